module libxcp.org/xcp

go 1.19
