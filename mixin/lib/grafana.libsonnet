// The few Grafana dashboard shapes the mixin uses (grafonnet cannot be
// fetched here, and these are all the dashboard needs).
{
  // Every panel and query variable reads the data source the user picked.
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // A query; instant ones feed stats and tables (table: one row per series).
  target(expr, legend='__auto', instant=false, table=false):: {
    datasource: $.datasource,
    expr: expr,
    legendFormat: legend,
    instant: instant,
    range: !instant,
  } + (if table then { format: 'table' } else {}),

  row(title, y):: {
    type: 'row',
    title: title,
    collapsed: false,
    panels: [],
    gridPos: { x: 0, y: y, w: 24, h: 1 },
  },

  // A panel at x, y of width w and height h on Grafana's 24 columns; its
  // queries get the refIds A, B, ... in order.
  panel(type, title, description, pos, targets):: {
    type: type,
    title: title,
    description: description,
    datasource: $.datasource,
    gridPos: { x: pos[0], y: pos[1], w: pos[2], h: pos[3] },
    targets: std.mapWithIndex(function(i, t) t { refId: std.char(std.codepoint('A') + i) }, targets),
    options: {},
    fieldConfig: { defaults: {}, overrides: [] },
  },

  // A field override that sets one property of the fields named name.
  override(name, property, value, matcher='byName'):: {
    matcher: { id: matcher, options: name },
    properties: [{ id: property, value: value }],
  },

  fixedColor(color):: { mode: 'fixed', fixedColor: color },

  datasourceVariable:: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    options: [],
    regex: '',
    refresh: 1,
    hide: 0,
    includeAll: false,
    multi: false,
  },

  // A query variable with "All", refreshed when the time range changes.
  // allValue null leaves "All" to Grafana: the alternation of the values the
  // query found, so that it stays within them.
  queryVariable(name, label, query, allValue='.*', regex='', hide=0):: {
    name: name,
    label: label,
    type: 'query',
    datasource: $.datasource,
    definition: query,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    regex: regex,
    refresh: 2,
    sort: 1,
    multi: true,
    includeAll: true,
    current: { text: 'All', value: '$__all' },
    options: [],
    hide: hide,
  } + (if allValue != null then { allValue: allValue } else {}),
}
