import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { EventsDb, type NewEvent } from "./events_db.ts";
import type { AmpEvent } from "./event.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function withEventsDb(fn: (events: EventsDb, path: string) => Promise<void>): Promise<void> {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.db");
    const events = await EventsDb.open(path, { host: "web1" });
    try {
      await fn(events, path);
    } finally {
      await events.close();
    }
  });
}

const threat: AmpEvent = {
  type: "Threat Detected",
  time: 1_700_000_000_123,
  host: "db1",
  policy: { name: "Protect Policy for Linux", id: 2 },
  path: new Uint8Array([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0x62, 0x61, 0x64, 0xff, 0xfe]),
  sha256: "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f",
  size: 68,
  detection: "Eicar-Signature",
  engine: "clamav",
  action: "quarantine",
  pid: 4242,
  ppid: 1,
  uid: 1000,
  executable: new Uint8Array([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0x63, 0x70]),
  commandLine: "cp eicar.com /tmp",
  parentExecutable: new Uint8Array([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0x73, 0x68]),
  localAddress: "10.0.0.5",
  localPort: 51000,
  remoteAddress: "203.0.113.9",
  remotePort: 443,
  protocol: "tcp",
  details: { scanned: 3, reasons: ["hash"] },
};

Deno.test("EventsDb.record() returns the id and list() reads every field back", async () => {
  await withEventsDb(async (events) => {
    const id = await events.record(threat);
    assert.equal(id, 1);
    const [stored] = await events.list();
    assert.deepEqual(stored, { ...threat, id });
  });
});

Deno.test("EventsDb.record() keeps non-UTF-8 paths as bytes with an escaped display form", async () => {
  await withEventsDb(async (events, path) => {
    await events.record(threat);
    const raw = new DatabaseSync(path);
    try {
      const row = raw.prepare("SELECT path, path_text, typeof(path) AS t FROM events").get();
      assert.equal(row?.t, "blob");
      assert.equal(row?.path_text, "/tmp/bad\\xff\\xfe");
      assert.deepEqual(row?.path, threat.path);
    } finally {
      raw.close();
    }
  });
});

Deno.test("EventsDb.record() stamps the host given to open() on events without one", async () => {
  await withEventsDb(async (events) => {
    await events.record({ type: "Connector Started", time: 1 });
    const [stored] = await events.list();
    assert.deepEqual(stored, { id: 1, type: "Connector Started", time: 1, host: "web1" });
  });
});

Deno.test("EventsDb.recordMany() records all events in order and returns their ids", async () => {
  await withEventsDb(async (events) => {
    const batch: NewEvent[] = [
      { type: "Scan Started", time: 1 },
      { type: "Threat Detected", time: 2, detection: "Eicar" },
      { type: "Scan Completed With Detections", time: 3 },
    ];
    assert.deepEqual(await events.recordMany(batch), [1, 2, 3]);
    assert.equal(await events.count(), 3);
  });
});

Deno.test("EventsDb.recordMany() records nothing when one event fails", async () => {
  await withEventsDb(async (events) => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await assert.rejects(
      events.recordMany([{ type: "Scan Started", time: 1 }, {
        type: "Scan Failed",
        time: 2,
        details: cyclic,
      }]),
      TypeError,
    );
    assert.equal(await events.count(), 0);
  });
});

Deno.test("EventsDb.list() returns newest first, filtered by type, sinceId and limit", async () => {
  await withEventsDb(async (events) => {
    await events.recordMany([
      { type: "Scan Started", time: 1 },
      { type: "Threat Detected", time: 2 },
      { type: "Threat Detected", time: 3 },
      { type: "Scan Completed With Detections", time: 4 },
      { type: "Threat Detected", time: 5 },
    ]);
    const ids = (list: { id: number }[]) => list.map((e) => e.id);
    assert.deepEqual(ids(await events.list()), [5, 4, 3, 2, 1]);
    assert.deepEqual(ids(await events.list({ type: "Threat Detected" })), [5, 3, 2]);
    assert.deepEqual(ids(await events.list({ sinceId: 3 })), [5, 4]);
    assert.deepEqual(ids(await events.list({ limit: 2 })), [5, 4]);
    assert.deepEqual(ids(await events.list({ type: "Threat Detected", sinceId: 2, limit: 1 })), [
      5,
    ]);
  });
});

Deno.test("EventsDb.count() counts stored events and survives reopening", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "events.db");
    const events = await EventsDb.open(path, { host: "web1" });
    assert.equal(await events.count(), 0);
    await events.record(threat);
    await events.record(threat);
    await events.close();
    const reopened = await EventsDb.open(path, { host: "web1" });
    try {
      assert.equal(reopened.recovered, undefined);
      assert.equal(await reopened.count(), 2);
    } finally {
      await reopened.close();
    }
  });
});

Deno.test("EventsDb.close() is safe to call twice", async () => {
  await withTempDir(async (dir) => {
    const events = await EventsDb.open(join(dir, "events.db"), { host: "web1" });
    await events.close();
    await events.close();
  });
});

Deno.test("EventsDb.open() moves a corrupt database aside and recreates it", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "amp", "events.db");
    await Deno.mkdir(join(dir, "amp"));
    const garbage = crypto.getRandomValues(new Uint8Array(8192));
    await Deno.writeFile(path, garbage);
    const events = await EventsDb.open(path, { host: "web1" });
    try {
      assert.ok(events.recovered !== undefined);
      assert.match(events.recovered, /\/amp\/events\.db\.corrupt-\d{8}T\d{6}\.\d{3}Z$/);
      assert.deepEqual(await Deno.readFile(events.recovered), garbage);
      assert.equal(await events.count(), 0);
      assert.equal(await events.record(threat), 1);
    } finally {
      await events.close();
    }
  });
});

Deno.test("EventsDb.list() filters by time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "amp-events-time-" });
  const events = await EventsDb.open(`${dir}/events.db`, { host: "h" });
  try {
    await events.record({ type: "Connector Started", time: 1_000 });
    await events.record({ type: "Connector Stopped", time: 5_000 });
    const recent = await events.list({ sinceTime: 2_000 });
    assert.deepEqual(recent.map((e) => e.type), ["Connector Stopped"]);
  } finally {
    await events.close();
    await Deno.remove(dir, { recursive: true });
  }
});
