import assert from "node:assert/strict";
import {
  encodeLine,
  LineSplitter,
  LineTooLongError,
  parseClientLine,
  parseServerLine,
  PROTOCOL_VERSION,
} from "./protocol.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

Deno.test("LineSplitter joins lines split across chunks and skips empty ones", () => {
  const lines = new LineSplitter(100);
  assert.deepEqual([...lines.push(bytes('{"id":1}\n{"id"'))], ['{"id":1}']);
  assert.equal(lines.pendingBytes, 5);
  assert.deepEqual([...lines.push(bytes(":"))], []);
  assert.deepEqual([...lines.push(bytes('2}\r\n\n\n{"id":3}\n'))], ['{"id":2}', '{"id":3}']);
  assert.equal(lines.pendingBytes, 0);
});

Deno.test("LineSplitter decodes UTF-8 split between chunks", () => {
  const lines = new LineSplitter(100);
  const all = bytes('"Ωmega"\n');
  assert.deepEqual([...lines.push(all.subarray(0, 2))], []);
  assert.deepEqual([...lines.push(all.subarray(2))], ['"Ωmega"']);
});

Deno.test("LineSplitter accepts a line of exactly maxBytes and rejects one byte more", () => {
  const lines = new LineSplitter(8);
  assert.deepEqual([...lines.push(bytes("12345678\n"))], ["12345678"]);
  assert.throws(() => [...lines.push(bytes("123456789\n"))], LineTooLongError);
});

Deno.test("LineSplitter stops an unfinished line at the bound instead of buffering it", () => {
  const lines = new LineSplitter(1024);
  const chunk = new Uint8Array(1000).fill(0x61);
  assert.deepEqual([...lines.push(chunk)], []);
  const seen: string[] = [];
  assert.throws(() => {
    for (const line of lines.push(bytes("ok\nfine\n"))) seen.push(line);
    for (const line of lines.push(chunk)) seen.push(line);
    for (const line of lines.push(bytes("last\n"))) seen.push(line);
    for (const line of lines.push(chunk)) seen.push(line);
    for (const line of lines.push(chunk)) seen.push(line);
  }, (error: unknown) => error instanceof LineTooLongError && error.limit === 1024);
  assert.deepEqual(seen.map((l) => l.length), [1002, 4, 1004], "the lines before come out first");
  assert.ok(lines.pendingBytes <= 1024);
});

Deno.test("encodeLine() writes one JSON line and refuses what JSON cannot hold", () => {
  assert.equal(
    new TextDecoder().decode(encodeLine({ id: 1, type: "result", data: "a\nb" })),
    '{"id":1,"type":"result","data":"a\\nb"}\n',
  );
  assert.throws(() => encodeLine({ n: 1n }), TypeError);
  assert.throws(() => encodeLine(undefined), TypeError);
});

Deno.test("parseClientLine() reads requests and cancellations and explains the rest", () => {
  assert.deepEqual(parseClientLine('{"id":1,"method":"status"}'), {
    ok: true,
    message: { id: 1, method: "status" },
  });
  assert.deepEqual(parseClientLine('{"id":2,"method":"scan","params":{"paths":["/"]}}'), {
    ok: true,
    message: { id: 2, method: "scan", params: { paths: ["/"] } },
  });
  assert.deepEqual(parseClientLine('{"cancel":2}'), { ok: true, message: { cancel: 2 } });
  for (
    const bad of ["nope", "[]", '{"id":"1","method":"x"}', '{"id":1}', '{"id":-1,"method":"x"}']
  ) {
    const parsed = parseClientLine(bad);
    assert.equal(parsed.ok, false, bad);
    if (!parsed.ok) assert.match(parsed.error, /^Not (JSON|a request)/);
  }
});

Deno.test("parseServerLine() reads the four server messages", () => {
  const hello = {
    type: "hello",
    version: PROTOCOL_VERSION,
    daemon: "amp",
    pid: 1,
    maxRequestBytes: 1024,
  };
  const messages = [
    hello,
    { id: 1, type: "progress", data: { files: 3 } },
    { id: 1, type: "result", data: null },
    { id: null, type: "error", error: { code: "bad-request", message: "Not JSON" } },
  ];
  for (const message of messages) {
    assert.deepEqual(parseServerLine(JSON.stringify(message)), { ok: true, message });
  }
  assert.equal(parseServerLine('{"id":1,"type":"resul"}').ok, false);
  assert.equal(parseServerLine('{"id":1,"type":"error","error":{"code":1}}').ok, false);
});
