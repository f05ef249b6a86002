/**
 * What a malicious verdict leads to, by policy: under audit, a Threat
 * Detected event; under quarantine, the file is moved to quarantine and
 * Threat Quarantined (or Quarantine Failure) follows. The actions form a
 * closed table keyed by the policy's file mode. Only `malicious` verdicts
 * reach here: an error or a skipped file is never a conviction.
 *
 * @module
 */

import type { OpenFile } from "../engine/pipeline.ts";
import type { AmpEvent } from "../store/event.ts";
import { escapePath } from "../sys/byte_path.ts";
import type { ProcessInfo } from "./process_info.ts";
import type { Quarantine } from "./quarantine.ts";

/** Where the file was found. */
export type ConvictionOrigin = "on-access" | "on-execute" | "scan" | "rescan";

/** An event without the fields the daemon's sink adds (time, host, policy). */
export type ConvictionEvent = Omit<AmpEvent, "time" | "host" | "policy">;

/** A malicious file and what is known about it. */
export interface Conviction {
  file: OpenFile;
  detection: string;
  engine: string;
  sha256?: string;
  origin: ConvictionOrigin;
  /** The process that wrote or executed it. */
  process?: ProcessInfo;
}

/** What {@linkcode Convictor.convict} did. */
export type ConvictionOutcome =
  | { action: "detected" }
  | { action: "quarantined"; id: number }
  | { action: "quarantine-failed"; error: string };

/** Options of {@linkcode Convictor}. */
export interface ConvictorOptions {
  /** The policy's file mode. */
  mode: () => "audit" | "quarantine";
  /** The quarantine (absent: quarantine fails with a clear reason). */
  quarantine?: Quarantine;
  event: (event: ConvictionEvent) => void;
  log?: (level: "warning" | "notice", message: string) => void;
}

/** Applies the policy to malicious files. */
export class Convictor {
  readonly #options: ConvictorOptions;

  constructor(options: ConvictorOptions) {
    this.#options = options;
  }

  /** Records the detection and, under a quarantine policy, quarantines the file. */
  async convict(c: Conviction): Promise<ConvictionOutcome> {
    const o = this.#options;
    const mode = o.mode();
    const base: ConvictionEvent = {
      type: "Threat Detected",
      path: c.file.path,
      sha256: c.sha256,
      size: c.file.stat.size,
      detection: c.detection,
      engine: c.engine,
      ...processFields(c.process),
      details: { origin: c.origin },
    };
    o.event({ ...base, action: mode === "audit" ? "detected" : "quarantine" });
    const shown = escapePath(c.file.path);
    if (mode === "audit") {
      o.log?.("notice", `Threat detected (audit): ${shown}: ${c.detection} [${c.origin}]`);
      return { action: "detected" };
    }
    if (!c.sha256) return this.#failed(base, shown, "the file was not hashed");
    if (!o.quarantine) return this.#failed(base, shown, "the quarantine is not available");
    try {
      const record = await o.quarantine.quarantine(c.file, {
        name: c.detection,
        engine: c.engine,
        sha256: c.sha256,
      });
      o.event({
        ...base,
        type: "Threat Quarantined",
        action: "quarantined",
        details: {
          origin: c.origin,
          quarantineId: record.id,
        },
      });
      o.log?.(
        "notice",
        `Threat quarantined: ${shown}: ${c.detection} [${c.origin}] id ${record.id}`,
      );
      return { action: "quarantined", id: record.id };
    } catch (error) {
      return this.#failed(base, shown, error instanceof Error ? error.message : String(error));
    }
  }

  #failed(base: ConvictionEvent, shown: string, error: string): ConvictionOutcome {
    this.#options.event({
      ...base,
      type: "Quarantine Failure",
      action: "quarantine-failed",
      details: { ...base.details, error },
    });
    this.#options.log?.("warning", `Quarantine failed: ${shown}: ${error}`);
    return { action: "quarantine-failed", error };
  }
}

/** The event fields of a process. */
export function processFields(p?: ProcessInfo): Partial<ConvictionEvent> {
  if (!p) return {};
  return {
    pid: p.pid,
    ppid: p.ppid,
    uid: p.uid,
    executable: p.executable,
    commandLine: p.commandLine,
    parentExecutable: p.parentExecutable,
  };
}
