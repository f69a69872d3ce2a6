{
  // selector('status="ERROR"') is the PromQL label selector of the exporter's
  // series with that matcher added: {job="modelarts_exporter", status="ERROR"}.
  selector(config, matchers=''):: '{%s}' % std.join(', ', std.filter(
    function(m) m != '', [config.modelartsExporterSelector, matchers]
  )),

  // labels(['project', 'id']) is "project, id" for by () and on (), with the
  // cluster label in front when the mixin keeps clusters apart.
  labels(config, names):: std.join(', ', (if config.showMultiCluster then [config.clusterLabel] else []) + names),

  // fold joins the lines of a text block with spaces, as YAML's ">-" does:
  // long annotations stay readable here and become one line in the rules.
  fold(text):: std.join(' ', std.split(std.rstripChars(text, '\n'), '\n')),
}
