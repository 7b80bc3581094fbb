# proc1, the data-processing server: its registry serves the workstations and GPU hosts of the site network,
# and its database exports and the key for raw uploads are copied off-site.
{
  endoreg.roles.data-processing = {
    exposeRegistry = true;
    offsiteBackup.enable = true;
  };
  # scraped by the site's Prometheus
  endoreg.monitoring = {
    listenAddress = "192.0.2.10";
    openFirewall = true;
  };
}
