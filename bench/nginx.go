package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// nginxConf is a fair, tuned nginx as an mTLS-in, mTLS-out reverse proxy:
// the same server certificate, client CA and CRL as the SSP, TLS 1.2 with
// the Spine's ECDHE-GCM suites, a shared session cache, no access log, a
// pool of keep-alive upstream connections with the SSP's client
// certificate, and the provider's certificate verified. It checks none of
// the GP Connect rules and keeps no audit.
const nginxConf = `worker_processes %[1]s;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
worker_rlimit_nofile 65536;
events {
    worker_connections 8192;
    multi_accept on;
}
http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 1000000;

    upstream provider {
        server %[3]s;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
    }
    server {
        listen %[4]s ssl;
        ssl_certificate %[5]s/ssp-server.pem;
        ssl_certificate_key %[5]s/ssp-server-key.pem;
        ssl_client_certificate %[5]s/ca.pem;
        ssl_verify_client on;
        ssl_crl %[5]s/crl.pem;
        ssl_protocols TLSv1.2;
        ssl_ciphers ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256;
        ssl_prefer_server_ciphers on;
        ssl_session_cache shared:SSL:10m;
        ssl_session_timeout 10m;

        location / {
            proxy_pass https://provider;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host localhost;
            proxy_ssl_certificate %[5]s/ssp-client.pem;
            proxy_ssl_certificate_key %[5]s/ssp-client-key.pem;
            proxy_ssl_trusted_certificate %[5]s/ca.pem;
            proxy_ssl_verify on;
            proxy_ssl_verify_depth 2;
            proxy_ssl_name localhost;
            proxy_ssl_server_name on;
            proxy_ssl_session_reuse on;
            proxy_ssl_protocols TLSv1.2 TLSv1.3;
        }
    }
}
`

// nginxInstance is one running nginx in front of upstream.
type nginxInstance struct {
	*child
	addr string
}

// startNginx runs nginx in the foreground with a generated configuration
// in its own directory, proxying to upstream (host:port).
func (st *stage) startNginx(ctx context.Context, name, upstream string) (*nginxInstance, error) {
	if err := st.ensureNginx(ctx); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	prefix := filepath.Join(st.dir, name)
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(prefix, "nginx.conf")
	text := fmt.Sprintf(nginxConf, st.o.nginxWorkers, prefix, upstream, addr, st.pki)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return nil, err
	}
	c, err := st.start(name, "nginx", "-c", conf, "-p", prefix, "-e", filepath.Join(prefix, "error.log"), "-g", "daemon off;")
	if err != nil {
		return nil, err
	}
	if err := c.waitReady(ctx, addr); err != nil {
		b, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
		return nil, fmt.Errorf("%w\nerror.log:\n%s", err, b)
	}
	return &nginxInstance{child: c, addr: addr}, nil
}
