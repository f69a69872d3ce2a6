// The dashboards by file name: jsonnet -m <dir> dashboards.jsonnet
(import 'mixin.libsonnet').grafanaDashboards
