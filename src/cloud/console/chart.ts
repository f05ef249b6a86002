/**
 * A stacked bar chart as inline SVG, drawn on the server: no script, no
 * library. The SVG is `role="img"` with a summary for screen readers, and
 * the same figures follow in a table.
 *
 * @module
 */

import { Html, html } from "./html.ts";

/** One series of the chart. */
export interface ChartSeries {
  key: string;
  label: string;
  /** A CSS colour. */
  color: string;
}

/** One bar: a label and a value per series key. */
export interface ChartBar {
  label: string;
  values: Record<string, number>;
}

/** Options of {@linkcode barChart}. */
export interface BarChartOptions {
  /** What the chart shows (the accessible name and the table caption). */
  title: string;
  series: readonly ChartSeries[];
  bars: readonly ChartBar[];
  width?: number;
  height?: number;
}

/** A "nice" axis maximum at or above `n`: 1, 2, 5 × 10^k. */
export function niceMax(n: number): number {
  if (n <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/**
 * The chart, its legend and its data table.
 *
 * @example
 * ```ts
 * import { barChart } from "./chart.ts";
 * barChart({
 *   title: "Detections per day",
 *   series: [{ key: "files", label: "Files", color: "#0a4fa3" }],
 *   bars: [{ label: "11-25", values: { files: 3 } }],
 * }).value.includes("<svg"); // true
 * ```
 */
export function barChart(options: BarChartOptions): Html {
  const width = options.width ?? 720;
  const height = options.height ?? 220;
  const left = 40, right = 8, top = 10, bottom = 28;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const totals = options.bars.map((b) =>
    options.series.reduce((sum, s) => sum + (b.values[s.key] ?? 0), 0)
  );
  const max = niceMax(Math.max(0, ...totals));
  const slot = options.bars.length > 0 ? plotW / options.bars.length : plotW;
  const barW = Math.max(2, slot * 0.7);
  const y = (v: number) => top + plotH - (v / max) * plotH;
  const ticks = [0, max / 2, max];
  const grid = ticks.map((t) =>
    html`
      <line x1="${left}" x2="${width - right}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(
        1,
      )}" stroke="#d0d7de" />
      <text x="${left - 4}" y="${(y(t) + 4).toFixed(1)}" text-anchor="end">${Number.isInteger(t)
        ? t
        : t.toFixed(1)}</text>
    `
  );
  const every = Math.max(1, Math.ceil(options.bars.length / 10));
  const bars = options.bars.map((b, i) => {
    const x = left + i * slot + (slot - barW) / 2;
    let base = 0;
    const rects = options.series.map((s) => {
      const v = b.values[s.key] ?? 0;
      if (v <= 0) return html``;
      const r = html`
        <rect x="${x.toFixed(1)}" y="${y(base + v).toFixed(1)}" width="${barW.toFixed(
          1,
        )}" height="${(y(base) - y(base + v)).toFixed(1)}" fill="${s.color}">
          <title>${b.label}: ${v} ${s.label.toLowerCase()}</title>
        </rect>
      `;
      base += v;
      return r;
    });
    const label = i % every === 0
      ? html`<text x="${(x + barW / 2).toFixed(1)}" y="${
        height - 10
      }" text-anchor="middle">${b.label}</text>`
      : html``;
    return html`<g>${rects}${label}</g>`;
  });
  const total = totals.reduce((a, b) => a + b, 0);
  const summary = `${options.title}: ${total} in all over ${options.bars.length} days` +
    (total > 0 ? `, at most ${Math.max(...totals)} in a day` : "");
  return html`
    <figure class="chart-figure">
      <svg class="chart" role="img" aria-label="${summary}" viewBox="0 0 ${width} ${height}"
        width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">
    ${grid}${bars}
      </svg>
      <figcaption>
        <ul class="legend">${options.series.map((s) =>
          html`<li><svg class="swatch" viewBox="0 0 10 10" aria-hidden="true"><rect width="10" height="10" fill="${s.color}"/></svg>${s.label}</li>`
        )}</ul>
      </figcaption>
    </figure>
    <details>
      <summary>${options.title}: the figures</summary>
      <table>
        <caption>${options.title}</caption>
        <thead>
          <tr><th scope="col">Day</th>${options.series.map((s) =>
            html`<th scope="col" class="num">${s.label}</th>`
          )}</tr>
        </thead>
        <tbody>${options.bars.map((b) =>
          html`<tr><th scope="row">${b.label}</th>${
            options.series.map((s) => html`<td class="num">${b.values[s.key] ?? 0}</td>`)
          }</tr>`
        )}</tbody>
      </table>
    </details>
  `;
}
