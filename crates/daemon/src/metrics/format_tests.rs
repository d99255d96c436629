use super::*;

#[test]
fn accept_headers_choose_the_format() {
    let cases = [
        (None, Format::PrometheusText),
        (Some(""), Format::PrometheusText),
        (Some("text/plain;version=0.0.4"), Format::PrometheusText),
        (Some("*/*"), Format::PrometheusText),
        (Some("application/openmetrics-text"), Format::OpenMetrics),
        // What Prometheus 2.x/3.x sends.
        (
            Some(
                "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
            ),
            Format::OpenMetrics,
        ),
        (
            Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"),
            Format::PrometheusText,
        ),
        (
            Some("application/openmetrics-text;q=0"),
            Format::PrometheusText,
        ),
        (Some("application/json"), Format::PrometheusText),
    ];
    for (accept, want) in cases {
        assert_eq!(negotiate(accept), want, "{accept:?}");
    }
}

#[test]
fn openmetrics_becomes_prometheus_text() {
    let om = "\
# HELP gpu_device_plugin_build Version of this plugin.
# TYPE gpu_device_plugin_build info
gpu_device_plugin_build_info{version=\"0.1.0\"} 1
# HELP gpu_device_plugin_registrations Successful registrations.
# TYPE gpu_device_plugin_registrations counter
gpu_device_plugin_registrations_total{resource=\"nvidia.com/gpu\"} 1
gpu_device_plugin_registrations_created{resource=\"nvidia.com/gpu\"} 1700000000
# HELP gpu_device_plugin_rpc_duration_seconds Time spent.
# TYPE gpu_device_plugin_rpc_duration_seconds histogram
# UNIT gpu_device_plugin_rpc_duration_seconds seconds
gpu_device_plugin_rpc_duration_seconds_bucket{le=\"+Inf\"} 0
gpu_device_plugin_rpc_duration_seconds_sum 0.0
gpu_device_plugin_rpc_duration_seconds_count 0
# HELP x_ratio A ratio.
# TYPE x_ratio gauge
# UNIT x_ratio ratio
x_ratio 0.5
# EOF
";
    let want = "\
# HELP gpu_device_plugin_build_info Version of this plugin.
# TYPE gpu_device_plugin_build_info gauge
gpu_device_plugin_build_info{version=\"0.1.0\"} 1
# HELP gpu_device_plugin_registrations_total Successful registrations.
# TYPE gpu_device_plugin_registrations_total counter
gpu_device_plugin_registrations_total{resource=\"nvidia.com/gpu\"} 1
# HELP gpu_device_plugin_rpc_duration_seconds Time spent.
# TYPE gpu_device_plugin_rpc_duration_seconds histogram
gpu_device_plugin_rpc_duration_seconds_bucket{le=\"+Inf\"} 0
gpu_device_plugin_rpc_duration_seconds_sum 0.0
gpu_device_plugin_rpc_duration_seconds_count 0
# HELP x_ratio A ratio.
# TYPE x_ratio gauge
x_ratio 0.5
";
    assert_eq!(to_prometheus_text(om), want);
}
