import assert from "node:assert/strict";
import {
  API_PREFIX,
  HeartbeatResponseSchema,
  LookupRequestSchema,
  PATHS,
  WireEventSchema,
} from "./protocol.ts";

Deno.test("every call path carries the protocol version", () => {
  assert.equal(API_PREFIX, "/v1");
  for (const path of Object.values(PATHS)) assert.ok(path.startsWith("/v1/"), path);
});

Deno.test("LookupRequestSchema takes 1 to 1000 lower-case hex SHA-256", () => {
  assert.ok(LookupRequestSchema.safeParse({ sha256: ["a".repeat(64)] }).success);
  assert.ok(!LookupRequestSchema.safeParse({ sha256: [] }).success);
  assert.ok(!LookupRequestSchema.safeParse({ sha256: ["A".repeat(64)] }).success);
  assert.ok(!LookupRequestSchema.safeParse({ sha256: Array(1001).fill("a".repeat(64)) }).success);
});

Deno.test("WireEventSchema accepts only the reference event names and no unknown fields", () => {
  const e = { key: "i:1", type: "Retrospective Detection", time: 1, host: "h" };
  assert.ok(WireEventSchema.safeParse(e).success);
  assert.ok(!WireEventSchema.safeParse({ ...e, type: "Something Else" }).success);
  assert.ok(!WireEventSchema.safeParse({ ...e, computerId: 2 }).success);
});

Deno.test("HeartbeatResponseSchema refuses another protocol version", () => {
  const answer = {
    protocol: 1,
    time: 1,
    heartbeatSeconds: 60,
    policy: { id: 1, serial: 1 },
    dispositionCursor: 0,
  };
  assert.ok(HeartbeatResponseSchema.safeParse(answer).success);
  assert.ok(!HeartbeatResponseSchema.safeParse({ ...answer, protocol: 2 }).success);
});
