import assert from "node:assert/strict";
import { join } from "node:path";
import { RetrospectiveDb } from "./retrospective_db.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("RetrospectiveDb records files by hash and path (bytes), first and last seen", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "retrospective.db");
  const clock = { now: 1000 };
  const retro = await RetrospectiveDb.open(path, { now: () => clock.now });
  try {
    const odd = new Uint8Array([...bytes("/tmp/bad"), 0xff, 0xfe, ...bytes(".com")]);
    retro.record("a".repeat(64), odd);
    retro.record("a".repeat(64), bytes("/srv/a"));
    retro.record("b".repeat(64), bytes("/srv/b"));
    await retro.flush();
    clock.now = 5000;
    retro.record("a".repeat(64), odd);
    const files = await retro.filesWith("a".repeat(64));
    assert.deepEqual(files.map((f) => [f.pathText, f.firstSeen, f.lastSeen]), [
      ["/tmp/bad\\xff\\xfe.com", 1000, 5000],
      ["/srv/a", 1000, 1000],
    ]);
    assert.deepEqual(files[0].path, odd);
    await retro.forget("a".repeat(64), odd);
    assert.equal((await retro.filesWith("a".repeat(64))).length, 1);
    assert.equal(await retro.cursor("https://c"), 0);
    await retro.setCursor("https://c", 42);
    await retro.close();
    const again = await RetrospectiveDb.open(path);
    assert.equal(await again.cursor("https://c"), 42);
    assert.equal(await again.cursor("https://other"), 0);
    assert.equal(await again.count(), 2);
    await again.close();
  } finally {
    await retro.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("RetrospectiveDb keeps at most maxFiles, forgetting those seen longest ago", async () => {
  const dir = await Deno.makeTempDir();
  const clock = { now: 0 };
  const retro = await RetrospectiveDb.open(join(dir, "r.db"), {
    maxFiles: 10,
    now: () => clock.now,
  });
  try {
    for (let i = 0; i < 25; i++) {
      clock.now = i;
      retro.record(i.toString(16).padStart(64, "0"), bytes(`/f${i}`));
    }
    await retro.flush();
    assert.equal(await retro.count(), 10);
    assert.equal((await retro.filesWith("0".repeat(64))).length, 0);
    assert.equal((await retro.filesWith((24).toString(16).padStart(64, "0"))).length, 1);
  } finally {
    await retro.close();
    await Deno.remove(dir, { recursive: true });
  }
});
