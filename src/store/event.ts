/**
 * The connector's events. Names follow the reference connector so that an
 * administrator who knows it recognises them; every event carries time, host
 * and policy, and the other fields where they fit.
 *
 * @module
 */

/** Every event type amp raises, named as the reference connector names them. */
export const EVENT_TYPES = [
  "Install Started",
  "Install Completed",
  "Connector Started",
  "Connector Stopped",
  "Policy Update",
  "Policy Update Failure",
  "Scan Started",
  "Scan Completed No Detections",
  "Scan Completed With Detections",
  "Scan Failed",
  "Threat Detected",
  "Threat Quarantined",
  "Quarantine Failure",
  "Quarantine Restored",
  "Executed Malware",
  "Process Killed",
  "DFC Threat Detected",
  "Retrospective Detection",
  "Definitions Updated",
  "Product Update",
  "Cloud Connection Lost",
  "Cloud Connection Restored",
] as const;

/** One of {@linkcode EVENT_TYPES}. */
export type EventType = typeof EVENT_TYPES[number];

/** An event as raised by a part of the connector (the store adds the id). */
export interface AmpEvent {
  type: EventType;
  /** Milliseconds since the epoch. */
  time: number;
  host: string;
  /** Policy in force: name and id. */
  policy?: { name: string; id: number };
  /** The file's path as raw bytes (paths are bytes on Linux). */
  path?: Uint8Array;
  sha256?: string;
  size?: number;
  detection?: string;
  engine?: string;
  action?: string;
  pid?: number;
  ppid?: number;
  uid?: number;
  executable?: Uint8Array;
  commandLine?: string;
  parentExecutable?: Uint8Array;
  localAddress?: string;
  localPort?: number;
  remoteAddress?: string;
  remotePort?: number;
  protocol?: string;
  /** Anything else worth keeping (scan summary figures, error text). */
  details?: Record<string, unknown>;
}

/** An event read back from the store. */
export interface StoredEvent extends AmpEvent {
  id: number;
}
