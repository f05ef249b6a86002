import assert from "node:assert/strict";
import {
  parseProcStatCpuTicks,
  parseProcStatusKb,
  readCpuTicks,
  readStatusKb,
} from "./daemon_proc.ts";

Deno.test("parseProcStatCpuTicks() adds utime and stime", () => {
  const line = "4242 (deno) S 1 4242 4242 0 -1 4194560 5000 0 3 0 1234 567 0 0 20 0 9 0 " +
    "99 1234567 20000 18446744073709551615\n";
  assert.equal(parseProcStatCpuTicks(line), 1801);
});

Deno.test("parseProcStatCpuTicks() counts fields after the last ')' of the command name", () => {
  const line = "77 (a) b (c) d) R 1 77 77 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 5 6 7";
  assert.equal(parseProcStatCpuTicks(line), 30);
});

Deno.test("parseProcStatCpuTicks() rejects text that is not a stat line", () => {
  assert.throws(() => parseProcStatCpuTicks("no name here"), /no command name/);
  assert.throws(() => parseProcStatCpuTicks("1 (x) S 1"), /not numbers/);
});

Deno.test("parseProcStatusKb() reads one kB field, null when absent", () => {
  const text = "Name:\tdeno\nVmPeak:\t 3000000 kB\nVmHWM:\t  150000 kB\nVmRSS:\t   81234 kB\n";
  assert.equal(parseProcStatusKb(text, "VmRSS"), 81234);
  assert.equal(parseProcStatusKb(text, "VmHWM"), 150000);
  assert.equal(parseProcStatusKb("Name:\tkworker\n", "VmRSS"), null);
});

Deno.test("readCpuTicks() and readStatusKb() read this process, null for a gone one", async () => {
  assert.ok((await readCpuTicks(Deno.pid))! >= 0);
  assert.ok((await readStatusKb(Deno.pid, "VmRSS"))! > 0);
  const child = new Deno.Command("true").spawn();
  await child.status;
  assert.equal(await readCpuTicks(child.pid), null);
  assert.equal(await readStatusKb(child.pid, "VmRSS"), null);
});
