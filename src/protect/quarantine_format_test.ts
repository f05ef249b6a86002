import assert from "node:assert/strict";
import {
  CIPHER_AES_256_CTR,
  decodeQuarantineHeader,
  encodeQuarantineHeader,
  newCipherKey,
  QUARANTINE_FORMAT_VERSION,
  QUARANTINE_HEADER_SIZE,
  quarantineCipher,
} from "./quarantine_format.ts";

Deno.test("encodeQuarantineHeader() writes AMPQ, the version, id and size that decodeQuarantineHeader() reads", () => {
  const header = encodeQuarantineHeader({ id: 4242, size: 2 ** 40 + 3 });
  assert.equal(header.length, QUARANTINE_HEADER_SIZE);
  assert.equal(new TextDecoder().decode(header.subarray(0, 4)), "AMPQ");
  assert.deepEqual([...header.subarray(4, 8)], [QUARANTINE_FORMAT_VERSION, 0, 32, 0]);
  assert.deepEqual([...header.subarray(25)], [0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeQuarantineHeader(header), {
    version: QUARANTINE_FORMAT_VERSION,
    id: 4242,
    size: 2 ** 40 + 3,
    cipher: CIPHER_AES_256_CTR,
  });
});

Deno.test("decodeQuarantineHeader() rejects other files, other versions and other ciphers", () => {
  assert.throws(
    () => decodeQuarantineHeader(new TextEncoder().encode("\x7fELF")),
    /no AMPQ header/,
  );
  const good = encodeQuarantineHeader({ id: 1, size: 1 });
  assert.throws(() => decodeQuarantineHeader(good.subarray(0, 31)), /no AMPQ header/);
  const version = good.slice();
  version[4] = 2;
  assert.throws(() => decodeQuarantineHeader(version), /version 2, header 32 bytes/);
  const cipher = good.slice();
  cipher[24] = 9;
  assert.throws(() => decodeQuarantineHeader(cipher), /cipher 9/);
});

Deno.test("quarantineCipher() is its own inverse across chunk boundaries and differs per key", () => {
  const data = new Uint8Array(100_000).map((_, i) => i % 251);
  const { key, iv } = newCipherKey();
  assert.equal(key.length, 32);
  assert.equal(iv.length, 16);
  const encoder = quarantineCipher(key, iv);
  const encoded = new Uint8Array(data.length);
  encoded.set(encoder.apply(data.subarray(0, 7)), 0);
  encoded.set(encoder.apply(data.subarray(7)), 7);
  assert.notDeepEqual(encoded, data);
  assert.deepEqual(quarantineCipher(key, iv).apply(encoded), data);
  const other = newCipherKey();
  assert.notDeepEqual(quarantineCipher(other.key, other.iv).apply(data), encoded);
});

Deno.test("quarantineCipher() output of zeros is not periodic (the key does not show through)", () => {
  const { key, iv } = newCipherKey();
  const out = quarantineCipher(key, iv).apply(new Uint8Array(4096));
  for (const period of [16, 32, 64]) {
    assert.notDeepEqual(out.subarray(0, period), out.subarray(period, 2 * period));
  }
});
