import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { join } from "node:path";
import { EventsDb } from "../store/events_db.ts";
import { CloudRequestError, CloudUnavailableError } from "./cloud_client.ts";
import { EventUploader, isCloudRefusal, toWireEvent } from "./event_uploader.ts";
import { type WireEvent, WireEventSchema } from "./protocol.ts";

async function withEvents(fn: (events: EventsDb, path: string) => Promise<void>) {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "events.db");
  const events = await EventsDb.open(path, { host: "web1" });
  try {
    await fn(events, path);
  } finally {
    await events.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("toWireEvent() keeps byte paths as base64 with an escaped copy, and validates", () => {
  const path = new Uint8Array([0x2f, 0x74, 0xff]);
  const wire = toWireEvent({
    id: 3,
    type: "Threat Detected",
    time: 5,
    host: "web1",
    path,
    sha256: "a".repeat(64),
    detection: "Eicar",
    engine: "clamav",
    pid: 10,
    executable: new TextEncoder().encode("/bin/sh"),
    details: { origin: "scan" },
  }, "inst");
  assert.equal(wire.key, "inst:3");
  assert.deepEqual(new Uint8Array(Buffer.from(wire.path!, "base64")), path);
  assert.equal(wire.pathText, "/t\\xff");
  assert.equal(wire.executableText, "/bin/sh");
  assert.ok(WireEventSchema.safeParse(wire).success);
});

Deno.test("EventUploader sends queued events oldest first and marks them only once stored", async () => {
  await withEvents(async (events) => {
    for (let i = 0; i < 12; i++) await events.record({ type: "Scan Started", time: i });
    const uploader = new EventUploader({ events, batchSize: 5 });
    assert.equal(await uploader.pending(), 12);
    const got: WireEvent[] = [];
    let fail = true;
    const send = (batch: WireEvent[]) => {
      if (fail && got.length >= 5) return Promise.reject(new Error("cloud down"));
      got.push(...batch);
      return Promise.resolve();
    };
    await assert.rejects(uploader.drain(send), /cloud down/);
    assert.equal(await uploader.pending(), 7, "the failed batch stays queued");
    fail = false;
    assert.equal(await uploader.drain(send), 7);
    assert.deepEqual(got.map((e) => e.time), [...Array(12).keys()]);
    assert.equal(new Set(got.map((e) => e.key)).size, 12);
    assert.equal(await uploader.pending(), 0);
    assert.equal(await uploader.drain(send), 0);
  });
});

Deno.test("EventUploader drops the oldest queued events past the bound, counted", async () => {
  await withEvents(async (events) => {
    for (let i = 0; i < 10; i++) await events.record({ type: "Scan Started", time: i });
    const dropped: number[] = [];
    const uploader = new EventUploader({ events, maxQueued: 4, onDrop: (n) => dropped.push(n) });
    const got: WireEvent[] = [];
    await uploader.drain((b) => Promise.resolve(void got.push(...b)));
    assert.deepEqual(dropped, [6]);
    assert.equal(uploader.dropped, 6);
    assert.deepEqual(got.map((e) => e.time), [6, 7, 8, 9]);
    assert.equal(await events.count(), 10, "dropped events stay in events.db");
  });
});

Deno.test("event keys do not repeat when events.db is recreated", async () => {
  await withEvents(async (events, path) => {
    const first = await events.instance();
    assert.equal(await events.instance(), first);
    const dir = await Deno.makeTempDir();
    const other = await EventsDb.open(join(dir, "events.db"));
    assert.notEqual(await other.instance(), first);
    await other.close();
    await Deno.remove(dir, { recursive: true });
    assert.ok(path.endsWith("events.db"));
  });
});

class Refused extends Error {}

Deno.test("EventUploader resends a refused batch one by one and drops only the refused event", async () => {
  await withEvents(async (events) => {
    for (let i = 0; i < 6; i++) await events.record({ type: "Scan Started", time: i });
    const refused: string[] = [];
    const uploader = new EventUploader({
      events,
      isRefusal: (e) => e instanceof Refused,
      onRefused: (e) => refused.push(e.key),
    });
    const stored: number[] = [];
    const send = (batch: WireEvent[]) => {
      if (batch.some((e) => e.time === 3)) return Promise.reject(new Refused("400"));
      stored.push(...batch.map((e) => e.time));
      return Promise.resolve();
    };
    assert.equal(await uploader.drain(send), 5);
    assert.deepEqual(stored, [0, 1, 2, 4, 5]);
    assert.equal(refused.length, 1);
    assert.equal(uploader.dropped, 1);
    assert.equal(await uploader.pending(), 0, "the queue is not blocked");
  });
});

Deno.test("isCloudRefusal() is a 400, 413 or 422 from the cloud, not an outage", () => {
  for (const status of [400, 413, 422]) {
    assert.equal(isCloudRefusal(new CloudRequestError("refused", status, "x")), true, `${status}`);
  }
  assert.equal(isCloudRefusal(new CloudRequestError("unauthorized", 401, "unauthorized")), false);
  assert.equal(isCloudRefusal(new CloudUnavailableError("down", { status: 503 })), false);
  assert.equal(isCloudRefusal(new Error("other")), false);
});

Deno.test("toWireEvent() cuts oversized text and details to the protocol's limits", () => {
  const wire = toWireEvent({
    id: 1,
    type: "Scan Failed",
    time: 1,
    host: "h".repeat(300),
    engine: "e".repeat(100),
    details: { error: "x".repeat(20_000) },
  }, "i");
  assert.ok(WireEventSchema.safeParse(wire).success);
  assert.equal(wire.host.length, 255);
  assert.deepEqual(wire.details, { truncated: true, size: 20_012 });
});
