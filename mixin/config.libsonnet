{
  _config+:: {
    // Selects the exporter's series: every alert uses it, and the dashboard
    // offers the jobs it matches. The default is the job name that
    // deploy/prometheus/prometheus.yml and the ServiceMonitors set.
    modelartsExporterSelector: 'job="modelarts_exporter"',

    // The label that tells clusters apart where one query layer sees several
    // (Thanos, Mimir, Cortex), and whether to use it: true makes the alerts
    // keep the clusters' series apart and shows the dashboard's cluster picker.
    clusterLabel: 'cluster',
    showMultiCluster: false,

    // The dashboard's uid (its URL: give each copy its own) and tags.
    dashboardUid: 'modelarts-images',
    dashboardTags: ['modelarts', 'prometheus', 'modelarts_exporter'],
  },
}
