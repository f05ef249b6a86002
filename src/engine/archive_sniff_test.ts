import assert from "node:assert/strict";
import { archiveFormat, SNIFF_BYTES } from "./archive_sniff.ts";

/** A SNIFF_BYTES-long head with `magic` at `offset`. */
function head(magic: number[], offset = 0): Uint8Array {
  const out = new Uint8Array(SNIFF_BYTES);
  out.set(magic, offset);
  return out;
}

Deno.test("archiveFormat() recognises each known magic number", () => {
  const cases: Array<[string, number[], number?]> = [
    ["zip", [0x50, 0x4b, 0x03, 0x04]],
    ["gzip", [0x1f, 0x8b]],
    ["bzip2", [0x42, 0x5a, 0x68]],
    ["xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
    ["7z", [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]],
    ["rar", [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07]],
    ["zstd", [0x28, 0xb5, 0x2f, 0xfd]],
    ["cab", [0x4d, 0x53, 0x43, 0x46]],
    ["ar", [...new TextEncoder().encode("!<arch>\n")]],
    ["rpm", [0xed, 0xab, 0xee, 0xdb]],
    ["cpio", [...new TextEncoder().encode("070701")]],
    ["tar", [...new TextEncoder().encode("ustar")], 257],
  ];
  for (const [name, magic, offset] of cases) {
    assert.equal(archiveFormat(head(magic, offset)), name, name);
  }
});

Deno.test("archiveFormat() returns undefined for text, ELF and empty or short heads", () => {
  assert.equal(archiveFormat(new TextEncoder().encode("#!/bin/sh\necho hi\n")), undefined);
  assert.equal(archiveFormat(head([0x7f, 0x45, 0x4c, 0x46])), undefined);
  assert.equal(archiveFormat(new Uint8Array(0)), undefined);
  // Half a zip magic, and "ustar" that would end past a short head.
  assert.equal(archiveFormat(new Uint8Array([0x50, 0x4b])), undefined);
  const shortTar = new Uint8Array(260);
  shortTar.set(new TextEncoder().encode("ust"), 257);
  assert.equal(archiveFormat(shortTar), undefined);
  // "ustar" at offset 0 is not a tar header.
  assert.equal(archiveFormat(head([...new TextEncoder().encode("ustar")])), undefined);
});

Deno.test("archiveFormat() recognises files made by tar, gzip and zip", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-sniff-" });
  try {
    await Deno.writeTextFile(`${dir}/f`, "hello\n");
    const run = async (cmd: string, args: string[]) => {
      const out = await new Deno.Command(cmd, { args, cwd: dir }).output();
      assert.ok(out.success, `${cmd}: ${new TextDecoder().decode(out.stderr)}`);
    };
    await run("tar", ["cf", "f.tar", "f"]);
    await run("zip", ["-q", "f.zip", "f"]);
    await run("gzip", ["-k", "f"]);
    const sniff = async (name: string) => {
      const bytes = await Deno.readFile(`${dir}/${name}`);
      return archiveFormat(bytes.subarray(0, SNIFF_BYTES));
    };
    assert.equal(await sniff("f.tar"), "tar");
    assert.equal(await sniff("f.zip"), "zip");
    assert.equal(await sniff("f.gz"), "gzip");
    assert.equal(await sniff("f"), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
