import assert from "node:assert/strict";
import { bytePath, latin1 } from "../sys/byte_path.ts";
import { compileExclusions } from "./exclusions.ts";
import { DEFAULT_EXCLUSIONS, type Exclusion } from "./schema.ts";

function matches(exclusion: Exclusion, path: string | Uint8Array): boolean {
  const bytes = typeof path === "string" ? bytePath(path) : path;
  return compileExclusions([exclusion]).match(bytes) === exclusion;
}

const BAD = new Uint8Array([...bytePath("/data/bad"), 0xff, 0xfe, ...bytePath(".LOG")]);

Deno.test("compileExclusions() path prefixes match component-wise", () => {
  const proc: Exclusion = { type: "path", path: "/proc" };
  assert.ok(matches(proc, "/proc"));
  assert.ok(matches(proc, "/proc/1/maps"));
  assert.ok(!matches(proc, "/procfoo"));
  assert.ok(!matches(proc, "/pro"));
  assert.ok(!matches(proc, "/var/proc"));
  assert.ok(matches({ type: "path", path: "/proc/" }, "/proc/1"));
  assert.ok(!matches({ type: "path", path: "/proc/" }, "/procfoo"));
  assert.ok(matches({ type: "path", path: "/" }, "/anything"));
  assert.ok(matches({ type: "path", path: "/data" }, BAD));
});

Deno.test("compileExclusions() wildcards: * within a component, ** across, ? one byte", () => {
  const star: Exclusion = { type: "wildcard", pattern: "/home/*/.cache/*.tmp" };
  assert.ok(matches(star, "/home/ann/.cache/a.tmp"));
  assert.ok(!matches(star, "/home/ann/x/.cache/a.tmp"));
  assert.ok(!matches(star, "/home/ann/.cache/d/a.tmp"));
  assert.ok(!matches(star, "/home/ann/.cache/a.tmp.gz"));
  const deep: Exclusion = { type: "wildcard", pattern: "/srv/**.bak" };
  assert.ok(matches(deep, "/srv/a/b/c.bak"));
  assert.ok(!matches(deep, "/srv.bak"));
  const mid: Exclusion = { type: "wildcard", pattern: "/a/**/b" };
  assert.ok(matches(mid, "/a/b"));
  assert.ok(matches(mid, "/a/x/y/b"));
  assert.ok(!matches(mid, "/a/xb"));
  const q: Exclusion = { type: "wildcard", pattern: "/tmp/f?.txt" };
  assert.ok(matches(q, "/tmp/f1.txt"));
  assert.ok(!matches(q, "/tmp/f.txt"));
  assert.ok(!matches(q, "/tmp/f/.txt"));
  assert.ok(
    matches({ type: "wildcard", pattern: "/x/(a+)[b]" }, "/x/(a+)[b]"),
    "regex chars literal",
  );
  assert.ok(!matches({ type: "wildcard", pattern: "/x/a.c" }, "/x/abc"));
});

Deno.test("compileExclusions() wildcards work on bytes that are not UTF-8", () => {
  assert.ok(matches({ type: "wildcard", pattern: "/data/bad*" }, BAD));
  assert.ok(matches({ type: "wildcard", pattern: "/data/bad??.LOG" }, BAD));
  assert.ok(!matches({ type: "wildcard", pattern: "/data/bad?.LOG" }, BAD));
  // A non-ASCII pattern character matches its UTF-8 bytes.
  assert.ok(matches({ type: "wildcard", pattern: "/data/é*" }, "/data/été"));
  assert.ok(matches({ type: "wildcard", pattern: "/data/??t??" }, "/data/été"));
});

Deno.test("compileExclusions() extensions: last component, ASCII case-insensitive", () => {
  const log: Exclusion = { type: "extension", extension: "log" };
  assert.ok(matches(log, "/var/log/syslog.log"));
  assert.ok(matches(log, "/var/log/SYSLOG.Log"));
  assert.ok(matches({ type: "extension", extension: ".LOG" }, "/a/b.log"));
  assert.ok(!matches(log, "/var/log/catalog"));
  assert.ok(!matches(log, "/var/a.log/b"));
  assert.ok(!matches(log, "/var/.log"));
  assert.ok(matches(log, BAD));
  assert.ok(matches({ type: "extension", extension: "tar.gz" }, "/a/b.TAR.gz"));
});

Deno.test("compileExclusions() returns the first match in policy order", () => {
  const matcher = compileExclusions(DEFAULT_EXCLUSIONS as Exclusion[]);
  assert.deepEqual(matcher.match(bytePath("/sys/kernel")), { type: "path", path: "/sys" });
  assert.deepEqual(matcher.matchLatin1("/var/lib/amp/quarantine/x"), DEFAULT_EXCLUSIONS[3]);
  assert.equal(matcher.match(bytePath("/usr/bin/ls")), undefined);
  assert.equal(matcher.match(bytePath("/system")), undefined);
  assert.equal(matcher.matchLatin1(latin1(bytePath("/run/amp"))), DEFAULT_EXCLUSIONS[2]);
});

Deno.test("compileExclusions() matchDirectory() prunes only whole trees", () => {
  const matcher = compileExclusions([
    { type: "extension", extension: "d" },
    { type: "wildcard", pattern: "/home/*" },
    { type: "wildcard", pattern: "/home/*/.cache/**" },
    { type: "path", path: "/proc" },
  ]);
  assert.equal(matcher.matchDirectory(bytePath("/etc/cron.d")), undefined);
  assert.equal(matcher.matchDirectory(bytePath("/home/ann")), undefined);
  assert.equal(matcher.matchDirectory(bytePath("/home/ann/.cache"))?.type, "wildcard");
  assert.equal(matcher.matchDirectory(bytePath("/home/ann/.cache/x"))?.type, "wildcard");
  assert.equal(matcher.matchDirectory(bytePath("/proc/1"))?.type, "path");
  assert.equal(matcher.match(bytePath("/etc/cron.d"))?.type, "extension");
});
