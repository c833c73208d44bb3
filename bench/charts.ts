// Charts for the benchmark report: Vega-Lite specs rendered to SVG files (no browser, no canvas).
import { writeFileSync } from 'node:fs'
import * as vega from 'vega'
import * as vl from 'vega-lite'

export interface Bar {
  label: string
  value: number
  group?: string
}

async function render(spec: vl.TopLevelSpec, file: string): Promise<void> {
  const compiled = vl.compile(spec).spec
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  writeFileSync(file, await view.toSVG())
  view.finalize()
}

/** A horizontal bar chart; `group` colours the bars. */
export function barChart(title: string, unit: string, bars: Bar[], file: string): Promise<void> {
  return render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title,
      width: 480,
      height: { step: 22 },
      data: { values: bars.map((b) => ({ ...b, group: b.group ?? b.label })) },
      mark: { type: 'bar', tooltip: true },
      encoding: {
        y: { field: 'label', type: 'nominal', sort: null, title: null, axis: { labelLimit: 320 } },
        x: { field: 'value', type: 'quantitative', title: unit },
        color: { field: 'group', type: 'nominal', legend: null },
      },
    },
    file,
  )
}

/** Lines over x (one per series). */
export function lineChart(title: string, xTitle: string, yTitle: string, points: Array<{ x: number; y: number; series: string }>, file: string): Promise<void> {
  return render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title,
      width: 480,
      height: 220,
      data: { values: points },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'x', type: 'quantitative', title: xTitle, scale: { type: 'log' } },
        y: { field: 'y', type: 'quantitative', title: yTitle },
        color: { field: 'series', type: 'nominal' },
      },
    },
    file,
  )
}
