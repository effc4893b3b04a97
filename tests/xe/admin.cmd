# XAPI's administrative commands over calls libxcp has: CPU features,
# licences, VIF IP settings, crashdumps, blobs and updates (their
# per-class commands), and the HA and WLB ones that fail with the
# missing feature's XenAPI error.
H=$(xe host-list --minimal)
xe host-get-cpu-features
xe host-get-cpu-features uuid=$H
xe host-get-cpu-features uuid=nope
xe pool-get-cpu-features
xe host-license-view
xe host-license-view host-uuid=$H
xe host-all-editions
xe pool-disable-ssl-legacy
V=$(xe vm-install template="Other install media" new-name-label=a)
N=$(xe network-list --minimal)
F=$(xe vif-create vm-uuid=$V network-uuid=$N device=0)
xe vif-configure-ipv4 uuid=$F
xe vif-configure-ipv4 uuid=$F mode=bogus
xe vif-configure-ipv4 uuid=$F mode=static
xe vif-configure-ipv4 uuid=$F mode=Static address=10.0.0.2/24 gateway=10.0.0.1
xe vif-configure-ipv6 uuid=$F mode=autoconf
xe vif-list uuid=$F params=ipv4-configuration-mode,ipv4-addresses,ipv4-gateway,ipv6-configuration-mode
xe vif-configure-ipv6 uuid=$F mode=dhcp
xe vm-crashdump-list vm=a
xe vm-crashdump-list vm=nothing
xe pool-ha-compute-hypothetical-max-host-failures-to-tolerate vm-uuid=$V
xe pool-ha-compute-hypothetical-max-host-failures-to-tolerate vm-uuid=$V restart-priority=restart
xe blob-list
xe blob-param-list uuid=nope
xe help blob-list
xe update-list
xe update-param-get uuid=nope param-name=version
xe help update-param-clear
xe pool-dump-database
xe pool-dump-database file-name=/nonexistent/dump.xml
xe pool-dump-database file-name=$XCP_STATE_DIR/../dump.xml
xe pool-retrieve-wlb-report
xe pool-retrieve-wlb-report report=pool_health filename=$XCP_STATE_DIR/../report
xe pool-retrieve-wlb-diagnostics
xe pool-sync-bundle
xe pool-sync-bundle filename=bundle.tar
xe host-backup file-name=backup
xe blob-get uuid=nope filename=blob
xe audit-log-get filename=audit
