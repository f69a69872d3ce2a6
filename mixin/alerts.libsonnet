// The alerting rules. deploy/prometheus/alerts_test.yml unit-tests them with
// promtool (every alert firing, and silent in a near miss), and pins the
// rendered annotations: change both together.
//
// The `for:` durations assume a scrape interval of 60s: an alert needs several
// consecutive bad scrapes, never just one (go test ./deploy checks five).
local utils = import 'lib/utils.libsonnet';
local fold = utils.fold;

{
  prometheusAlerts+:: {
    local cfg = $._config,
    local sel(matchers='') = utils.selector(cfg, matchers),
    local labels(names) = utils.labels(cfg, names),

    groups+: [
      {
        name: 'modelarts-images',
        rules: [
          // ERROR and CREATE_FAILED are states the API reports, not blips of
          // the exporter, but one odd answer must not page: five minutes.
          {
            alert: 'ModelArtsImageFailed',
            expr: |||
              modelarts_image_status%s == 1
            ||| % sel('status=~"ERROR|CREATE_FAILED"'),
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'ModelArts image {{ $labels.name }} is in status {{ $labels.status }}',
              description: fold(|||
                Image {{ $labels.name }} ({{ $labels.id }}) of project {{ $labels.project }}
                has been in status {{ $labels.status }} for 5 minutes; notebooks and jobs
                cannot use it. What to do: read the image's status_message in the ModelArts
                console (Image Management) or with ShowImage; for CREATE_FAILED save the
                image again (a notebook image must stay under 35 GB), for ERROR check that
                its SWR repository still exists and is readable, then re-register or
                delete the image.
              |||),
            },
          },
          // A save normally takes minutes. The condition itself is time based
          // (last update_at more than an hour ago), so a restart of the
          // exporter or of Prometheus does not reset the clock; `for:` only
          // rides out odd scrapes.
          {
            alert: 'ModelArtsImageStuck',
            expr: |||
              (modelarts_image_status%s == 1)
              and on (%s)
              (time() - modelarts_image_updated_timestamp_seconds%s > 3600)
            ||| % [sel('status=~"CREATING|INIT"'), labels(['project', 'id']), sel()],
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'ModelArts image {{ $labels.name }} is stuck in {{ $labels.status }}',
              description: fold(|||
                Image {{ $labels.name }} ({{ $labels.id }}) of project {{ $labels.project }}
                has been in status {{ $labels.status }} for more than an hour since its
                last update. What to do: look at the image's status_message and at the
                notebook or job that saves it; if nothing moves, delete the image and
                save it again, or open a ticket with the cloud provider quoting the
                image ID.
              |||),
            },
          },
          // Deleted images are not urgent, but a configured image that is gone
          // means the configuration or the image lifecycle is wrong.
          {
            alert: 'ModelArtsImageNotFound',
            expr: |||
              modelarts_image_not_found%s == 1
              or
              max by (%s) (modelarts_image_status%s) == 1
            ||| % [sel(), labels(['job', 'instance', 'project', 'id', 'name']), sel('status="DELETED"')],
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Configured ModelArts image {{ $labels.id }} is not found or deleted',
              description: fold(|||
                The image {{ $labels.id }} configured for project {{ $labels.project }}
                does not exist or is in status DELETED. What to do: if it was deleted on
                purpose, remove its ID from the exporter's configuration and reload the
                exporter (SIGHUP, or POST /-/reload with --web.enable-lifecycle);
                otherwise find out who deleted it and re-create it from its SWR image.
              |||),
            },
          },
          // The image could not be fetched although the API works for the
          // project (those cases are ModelArtsAPIDown) and although it exists
          // (those are ModelArtsImageNotFound).
          {
            alert: 'ModelArtsImageScrapeFailing',
            expr: |||
              modelarts_image_up%s == 0
              unless on (%s) modelarts_image_not_found%s == 1
              unless on (%s) modelarts_up%s == 0
            ||| % [sel(), labels(['project', 'id']), sel(), labels(['project']), sel()],
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'ModelArts image {{ $labels.id }} has not been fetched for 15 minutes',
              description: fold(|||
                The exporter could not fetch image {{ $labels.id }} of project
                {{ $labels.project }} for 15 minutes, while other calls to the API work;
                its metrics are missing or stale. What to do: look for "Failed to fetch
                image" in the exporter's log, which names the HTTP code, error_code and
                request_id; typical causes are throttling (429), server errors (5xx)
                and a scrape timeout that is too short for the number of images.
              |||),
            },
          },
        ],
      },
      {
        name: 'modelarts-exporter',
        rules: [
          // modelarts_up is 0 when the credentials were refused or no call
          // reached the API. Ten minutes of failed scrapes before paging.
          {
            alert: 'ModelArtsAPIDown',
            expr: |||
              modelarts_up%s == 0
            ||| % sel(),
            'for': '10m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'ModelArts API unreachable or credentials refused for project {{ $labels.project }}',
              description: fold(|||
                For 10 minutes every scrape of project {{ $labels.project }} failed: the
                credentials were refused (HTTP 401/403) or the API could not be reached.
                No image of this project is monitored. What to do: read the exporter's
                log for the error; check that the access key or IAM user is enabled and
                allowed to read ModelArts images in the project, that the project_id
                matches the region, and that the exporter can reach the ModelArts and
                IAM endpoints (proxy, firewall, DNS).
              |||),
            },
          },
          {
            alert: 'ModelArtsExporterDown',
            expr: |||
              up%s == 0
            ||| % sel(),
            'for': '5m',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'modelarts_exporter {{ $labels.instance }} is down',
              description: fold(|||
                Prometheus has failed to scrape {{ $labels.instance }} (job
                {{ $labels.job }}) for 5 minutes, so no ModelArts image is monitored
                through it. What to do: check that the process or pod is running
                (systemctl status modelarts_exporter, kubectl get pods) and read its
                log; a scrape that takes longer than scrape_timeout also counts as
                down, so compare modelarts_scrape_duration_seconds with the timeout.
              |||),
            },
          },
          // More than 5% of the exporter's API calls of a project answered
          // with 429 over 10 minutes, for 15 minutes.
          {
            alert: 'ModelArtsAPIThrottled',
            expr: |||
              sum by (%(by)s) (rate(modelarts_api_requests_total%(throttled)s[10m]))
              /
              sum by (%(by)s) (rate(modelarts_api_requests_total%(all)s[10m]))
              > 0.05
            ||| % {
              by: labels(['job', 'instance', 'project']),
              throttled: sel('code="429"'),
              all: sel(),
            },
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'ModelArts API throttles the exporter for project {{ $labels.project }}',
              description: fold(|||
                {{ $value | humanizePercentage }} of the exporter's API requests for
                project {{ $labels.project }} were answered with HTTP 429 over the last
                10 minutes; throttled images are not updated. What to do: scrape less
                often (scrape_interval), lower global.concurrency, set rate_limit for
                the project, use min_refresh_interval when several Prometheus servers
                scrape the same exporter, or ask for a higher API quota.
              |||),
            },
          },
          {
            alert: 'ModelArtsExporterConfigReloadFailed',
            expr: |||
              modelarts_exporter_config_last_reload_successful%s == 0
            ||| % sel(),
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'modelarts_exporter {{ $labels.instance }} failed to reload its configuration',
              description: fold(|||
                The last configuration reload of {{ $labels.instance }} failed; the
                exporter still runs with the previous configuration. What to do: run
                modelarts_exporter --config.check --config.file=... on the file, fix
                what it reports and reload again.
              |||),
            },
          },
        ],
      },
    ],
  },
}
