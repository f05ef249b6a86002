import assert from "node:assert/strict";
import { toHex } from "./prng.ts";
import { eicarBytes, hashOf, plantedBodyContent, plantedHashContent } from "./samples.ts";
import { bodySignatureLines, hashSignatureLines } from "./signatures.ts";

Deno.test("hashSignatureLines() writes sha256:size:Name lines ending with the planted hash", () => {
  const lines = hashSignatureLines(4);
  assert.equal(lines.length, 4);
  for (const line of lines) assert.match(line, /^[0-9a-f]{64}:\d+:[A-Za-z0-9.]+$/);
  const planted = hashOf(plantedHashContent());
  assert.equal(lines[3], `${planted.sha256}:${planted.size}:Amp.Bench.PlantedHash`);
  assert.deepEqual(hashSignatureLines(4), lines, "the same seed gives the same database");
});

Deno.test("bodySignatureLines() writes random 16–32-byte patterns plus EICAR and the planted one", () => {
  const lines = bodySignatureLines(50);
  assert.equal(lines.length, 52);
  for (const line of lines.slice(0, 50)) {
    const hex = line.split(":")[3];
    assert.match(line, /^Amp\.Bench\.Body\.\d+:0:\*:[0-9a-f]+$/);
    assert.ok(hex.length >= 32 && hex.length <= 64, line);
  }
  assert.equal(lines[50], `Amp.Bench.Eicar:0:*:${toHex(eicarBytes())}`);
  const pattern = lines[51].split(":")[3];
  assert.ok(
    toHex(plantedBodyContent()).includes(pattern),
    "the planted body file holds its pattern",
  );
});

Deno.test("eicarBytes() is the 68-byte test string", () => {
  const bytes = eicarBytes();
  assert.equal(bytes.length, 68);
  assert.equal(
    hashOf(bytes).sha256,
    "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
  );
});
