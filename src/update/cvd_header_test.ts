import assert from "node:assert/strict";
import { CvdHeaderError, parseCvdHeader } from "./cvd_header.ts";

const header = (text: string) => new TextEncoder().encode(text.padEnd(512));

Deno.test("parseCvdHeader() reads sigtool's unsigned header", () => {
  const h = parseCvdHeader(header(
    "ClamAV-VDB:26 Nov 2026 14-07 +0000:3:1:216:34cee02e3c381fcf43b947e0979e1b9c:X:amp:1795702065",
  ));
  assert.deepEqual(h, {
    buildTime: "26 Nov 2026 14-07 +0000",
    version: 3,
    signatures: 1,
    functionalityLevel: 216,
    md5: "34cee02e3c381fcf43b947e0979e1b9c",
    digitalSignature: "X",
    builder: "amp",
    stime: 1795702065,
  });
});

Deno.test("parseCvdHeader() rejects short, foreign and malformed headers", () => {
  assert.throws(() => parseCvdHeader(new Uint8Array(100)), CvdHeaderError);
  assert.throws(() => parseCvdHeader(header("<html>not found</html>")), /Not a ClamAV/);
  assert.throws(
    () => parseCvdHeader(header("ClamAV-VDB:t:x:1:216:34cee02e3c381fcf43b947e0979e1b9c:X:amp")),
    /Bad version/,
  );
  assert.throws(() => parseCvdHeader(header("ClamAV-VDB:t:1:1:216:nothex:X:amp")), /Bad MD5/);
});
