/**
 * The program's version, from deno.json (compiled into the executable).
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** amp's version, such as `0.1.0`. */
export const VERSION: string = denoJson.version;
