// The Grafana dashboard. make e2e runs every query of it against a real
// Prometheus, with "All" selected and with one project and image selected.
local g = import 'lib/grafana.libsonnet';
local utils = import 'lib/utils.libsonnet';

// The statuses the API documents, in the order and colours the panels use.
local statuses = [
  { name: 'ACTIVE', color: 'green' },
  { name: 'INIT', color: 'blue' },
  { name: 'CREATING', color: 'blue' },
  { name: 'CREATE_FAILED', color: 'red' },
  { name: 'ERROR', color: 'red' },
  { name: 'DELETED', color: 'text' },
];

local timeseries(title, description, pos, targets) =
  g.panel('timeseries', title, description, pos, targets) {
    options: {
      legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'multi', sort: 'none' },
    },
  };

local stat(title, description, pos, target, textMode='value_and_name') =
  g.panel('stat', title, description, pos, [target]) {
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      colorMode: 'background',
      graphMode: 'none',
      textMode: textMode,
    },
  };

{
  grafanaDashboards+:: {
    local cfg = $._config,
    // The variables' matchers: exporter-wide series, then per project, then
    // per image (picked by id, as names need not be unique).
    local exporter = '%s=~"$cluster", job=~"$job", instance=~"$instance"' % cfg.clusterLabel,
    local project = exporter + ', project=~"$project"',
    local image = project + ', id=~"$image"',

    local variables = [
      g.datasourceVariable,
      g.queryVariable('cluster', 'Cluster',
                      'label_values(modelarts_up%s, %s)' % [utils.selector(cfg), cfg.clusterLabel],
                      hide=if cfg.showMultiCluster then 0 else 2),
      g.queryVariable('job', 'Job',
                      'label_values(modelarts_up%s, job)' % utils.selector(cfg, '%s=~"$cluster"' % cfg.clusterLabel),
                      allValue=null),
      g.queryVariable('instance', 'Instance',
                      'label_values(modelarts_up{%s=~"$cluster", job=~"$job"}, instance)' % cfg.clusterLabel),
      g.queryVariable('project', 'Project', 'label_values(modelarts_up{%s}, project)' % exporter),
      // query_result lines read {id="...",name="..."} 1 <timestamp>: the id
      // is the value, the name what the picker shows.
      g.queryVariable('image', 'Image',
                      'query_result(max by (id, name) (modelarts_image_info{%s}))' % project,
                      regex='/id="(?<value>[^"]*)",name="(?<text>[^"]*)"/'),
    ],

    local panels = [
      g.row('Status', 0),
      stat('Images per status',
           'Number of exported images in each status (modelarts_image_status == 1). Undocumented statuses show under their own name.',
           [0, 1, 12, 5],
           g.target('count by (status) (modelarts_image_status{%s} == 1)' % image, '{{status}}', instant=true)) {
        options+: { orientation: 'horizontal', justifyMode: 'auto' },
        fieldConfig: {
          defaults: { unit: 'short', color: g.fixedColor('purple') },
          overrides: [g.override(s.name, 'color', g.fixedColor(s.color)) for s in statuses],
        },
      },
      stat('Failed images',
           'Images in ERROR or CREATE_FAILED. The ModelArtsImageFailed alert fires when one stays there for 5 minutes.',
           [12, 1, 4, 5],
           g.target('count(modelarts_image_status{%s, status=~"ERROR|CREATE_FAILED"} == 1) or vector(0)' % image, 'failed', instant=true),
           textMode='value') {
        fieldConfig+: { defaults: {
          unit: 'short',
          thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] },
        } },
      },
      stat('API reachable',
           'modelarts_up per project: 0 when the credentials were refused or the API could not be reached in the last scrape.',
           [16, 1, 8, 5],
           g.target('modelarts_up{%s}' % project, '{{project}}', instant=true)) {
        fieldConfig+: { defaults: {
          mappings: [{ type: 'value', options: { '0': { text: 'DOWN', color: 'red' }, '1': { text: 'UP', color: 'green' } } }],
          thresholds: { mode: 'absolute', steps: [{ color: 'red', value: null }, { color: 'green', value: 1 }] },
        } },
      },
      g.panel('table', 'Images',
              'One row per exported image: status, size, age since creation and time since the last update (create_at and update_at of the API). Built-in images have no size.',
              [0, 6, 24, 9],
              [
                g.target('max by (project, id, name, status) (modelarts_image_status{%s} == 1)' % image, instant=true, table=true),
                g.target('max by (project, id, name) (modelarts_image_size_bytes{%s})' % image, instant=true, table=true),
                g.target('max by (project, id, name) (time() - modelarts_image_created_timestamp_seconds{%s})' % image, instant=true, table=true),
                g.target('max by (project, id, name) (time() - modelarts_image_updated_timestamp_seconds{%s})' % image, instant=true, table=true),
                g.target('max by (project, id, name, tag, type, arch) (modelarts_image_info{%s})' % image, instant=true, table=true),
              ]) {
        transformations: [
          { id: 'merge', options: {} },
          { id: 'organize', options: {
            excludeByName: { Time: true, 'Value #A': true, 'Value #E': true },
            indexByName: { project: 0, name: 1, tag: 2, status: 3, 'Value #B': 4, 'Value #C': 5, 'Value #D': 6, type: 7, arch: 8, id: 9 },
            renameByName: { 'Value #B': 'Size', 'Value #C': 'Age', 'Value #D': 'Since update' },
          } },
        ],
        options: { showHeader: true, cellHeight: 'sm', sortBy: [{ displayName: 'status', desc: false }] },
        fieldConfig+: { overrides: [
          g.override('Size', 'unit', 'bytes'),
          g.override('Age', 'unit', 'dtdurations'),
          g.override('Since update', 'unit', 'dtdurations'),
          {
            matcher: { id: 'byName', options: 'status' },
            properties: [
              { id: 'custom.cellOptions', value: { type: 'color-background' } },
              { id: 'mappings', value: std.mapWithIndex(
                function(i, s) { type: 'value', options: { [s.name]: { color: s.color, index: i } } }, statuses
              ) },
            ],
          },
        ] },
      },

      g.row('History', 15),
      // Each status as a number (1 = ACTIVE, ...), mapped back to its name.
      g.panel('state-timeline', 'Status timeline',
              'Status of each image over time. OTHER is a status the API reference does not list (see modelarts_image_status).',
              [0, 16, 24, 8],
              [g.target('max by (project, id, name) (\n%s\n)' % std.join('\n  or ', [
                'modelarts_image_status{%s, status="%s"} * %d' % [image, statuses[i].name, i + 1]
                for i in std.range(0, std.length(statuses) - 1)
              ]), '{{project}}/{{name}} ({{id}})')]) {
        options: {
          mergeValues: true,
          showValue: 'auto',
          alignValue: 'left',
          rowHeight: 0.9,
          legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
        },
        fieldConfig+: { defaults: {
          mappings: std.mapWithIndex(
            function(i, s) { type: 'value', options: { [std.toString(i + 1)]: { text: s.name, color: s.color, index: i + 1 } } }, statuses
          ) + [{ type: 'value', options: { '0': { text: 'OTHER (undocumented status)', color: 'purple', index: 0 } } }],
          color: { mode: 'thresholds' },
          thresholds: { mode: 'absolute', steps: [{ color: 'purple', value: null }] },
        } },
      },
      timeseries('Image size', "modelarts_image_size_bytes: the API's size (KB) times 1024.", [0, 24, 24, 8],
                 [g.target('modelarts_image_size_bytes{%s}' % image, '{{project}}/{{name}} ({{id}})')]) {
        options: {
          legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull'], showLegend: true },
          tooltip: { mode: 'multi', sort: 'desc' },
        },
        fieldConfig+: { defaults: { unit: 'bytes', custom: { lineInterpolation: 'stepAfter' } } },
      },

      g.row('Scrape health', 32),
      timeseries('API reachable (modelarts_up)',
                 "1 when the project's API answered and accepted the credentials in the scrape, 0 when not (ModelArtsAPIDown).",
                 [0, 33, 8, 7], [g.target('modelarts_up{%s}' % project, '{{project}}')]) {
        fieldConfig+: { defaults: { min: 0, max: 1, decimals: 0, custom: { lineInterpolation: 'stepAfter' } } },
      },
      timeseries('Images fetched (modelarts_image_up)',
                 'Images fetched in the scrape against images configured. A gap means images are not monitored (ModelArtsImageScrapeFailing, ModelArtsImageNotFound).',
                 [8, 33, 8, 7], [
                   g.target('sum by (project) (modelarts_image_up{%s})' % image, '{{project}} fetched'),
                   g.target('count by (project) (modelarts_image_up{%s})' % image, '{{project}} configured'),
                 ]) {
        fieldConfig+: { defaults: { min: 0, decimals: 0, custom: { lineInterpolation: 'stepAfter' } } },
      },
      timeseries('Scrape duration',
                 "Time spent fetching each project's images per scrape. Keep it well below the scrape_timeout.",
                 [16, 33, 8, 7], [g.target('modelarts_scrape_duration_seconds{%s}' % project, '{{project}}')]) {
        fieldConfig+: { defaults: { unit: 's', min: 0 } },
      },
      timeseries('API requests by code',
                 'Requests the exporter sent to the ModelArts and IAM APIs, by HTTP status code ("error": no answer). A rising 429 rate is ModelArtsAPIThrottled.',
                 [0, 40, 12, 8],
                 [g.target('sum by (project, operation, code) (rate(modelarts_api_requests_total{%s}[$__rate_interval]))' % project,
                           '{{project}} {{operation}} {{code}}')]) {
        fieldConfig+: {
          defaults: { unit: 'reqps', min: 0 },
          overrides: [g.override('.* 429', 'color', g.fixedColor('orange'), matcher='byRegexp')],
        },
      },
      // The latency histogram has no project label.
      timeseries('API latency', "Latency of the exporter's API requests by operation (all projects).", [12, 40, 12, 8], [
        g.target('histogram_quantile(%s, sum by (operation, le) (rate(modelarts_api_request_duration_seconds_bucket{%s}[$__rate_interval])))' % [q[0], exporter],
                 '{{operation}} %s' % q[1])
        for q in [['0.5', 'p50'], ['0.9', 'p90'], ['0.99', 'p99']]
      ]) {
        fieldConfig+: { defaults: { unit: 's', min: 0 } },
      },
      g.panel('table', 'Firing ModelArts alerts',
              'Alerts of the modelarts_exporter mixin firing now, from the ALERTS series of this data source.',
              [0, 48, 24, 6],
              [g.target('ALERTS{alertname=~"ModelArts.*", alertstate="firing", %s}' % exporter, instant=true, table=true)]) {
        transformations: [{ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true, alertstate: true } } }],
        options: { showHeader: true, cellHeight: 'sm' },
      },
    ],

    'modelarts-images.json': {
      title: 'ModelArts images',
      uid: cfg.dashboardUid,
      description: "Status, size and age of ModelArts development images, and the health of modelarts_exporter's scrapes.",
      tags: cfg.dashboardTags,
      editable: true,
      graphTooltip: 1,
      refresh: '1m',
      schemaVersion: 39,
      version: 1,
      time: { from: 'now-24h', to: 'now' },
      timezone: '',
      annotations: { list: [] },
      links: [],
      templating: { list: variables },
      panels: std.mapWithIndex(function(i, p) p { id: i + 1 }, panels),
    },
  },
}
