package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"sspemu/certs"
	"sspemu/proxy"
)

// The reference proxies (-references) are Go proxies that check nothing
// and audit nothing, with the SSP's TLS on both legs: the floor that Go's
// own HTTP stack sets, against which sspemu's checks and audit are read.
//
//   - "reverse": net/http's server and httputil.ReverseProxy over an
//     http.Transport, the stack as Go ships it.
//   - "loop": one goroutine per consumer connection reads a request with
//     http.ReadRequest, writes it on a pooled provider connection, reads
//     the answer with http.ReadResponse and copies it back; no server or
//     transport machinery at all. It handles only what the bench sends.

// referenceTLS is the SSP's TLS: the server side requires a client
// certificate of the dev CA; the client side presents ssp-client.pem and
// verifies the provider.
func referenceTLS(pki string) (server, client *tls.Config, err error) {
	srv, err := certs.LoadKeyPair(filepath.Join(pki, certs.SSPServerFile), filepath.Join(pki, certs.SSPServerKeyFile))
	if err != nil {
		return nil, nil, err
	}
	cli, err := certs.LoadKeyPair(filepath.Join(pki, certs.SSPClientFile), filepath.Join(pki, certs.SSPClientKeyFile))
	if err != nil {
		return nil, nil, err
	}
	pool, err := certs.LoadCertPool(filepath.Join(pki, certs.CAFile))
	if err != nil {
		return nil, nil, err
	}
	server = &tls.Config{
		Certificates: []tls.Certificate{srv}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: proxy.SpineCipherSuites,
		NextProtos: []string{"http/1.1"},
	}
	client = &tls.Config{
		Certificates: []tls.Certificate{cli}, RootCAs: pool, ServerName: "localhost",
		MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	return server, client, nil
}

// providerPath is the path and query after the prefix-form target's host.
func providerPath(requestURI string) string {
	rest, ok := strings.CutPrefix(requestURI, "/https://")
	if !ok {
		return requestURI
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return rest[i:]
	}
	return "/"
}

// runReference serves one reference proxy (o.reference) until ctx ends.
func runReference(ctx context.Context, o childOptions) error {
	if o.reference == "ssp-loop" {
		return runSSPLoop(ctx, o)
	}
	serverTLS, clientTLS, err := referenceTLS(o.pki)
	if err != nil {
		return err
	}
	ln, err := tls.Listen("tcp", o.listen, serverTLS)
	if err != nil {
		return err
	}
	go func() { <-ctx.Done(); ln.Close() }()
	switch o.reference {
	case "reverse":
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.Out.URL = &url.URL{Scheme: "https", Host: o.endpoint, Opaque: providerPath(pr.In.RequestURI)}
				pr.Out.Host = "localhost"
			},
			Transport: &http.Transport{
				Proxy: nil, TLSClientConfig: clientTLS, MaxIdleConnsPerHost: 256, ForceAttemptHTTP2: false,
				TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{},
			},
		}
		srv := &http.Server{Handler: rp, TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		err = srv.Serve(ln)
	case "loop":
		p := &loopPool{addr: o.endpoint, cfg: clientTLS}
		for {
			conn, aerr := ln.Accept()
			if aerr != nil {
				err = aerr
				break
			}
			go p.serve(conn)
		}
	default:
		return fmt.Errorf("unknown reference proxy %q", o.reference)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// loopPool is the "loop" reference's pool of provider connections.
type loopPool struct {
	mu   sync.Mutex
	idle []*loopConn
	addr string
	cfg  *tls.Config
}

type loopConn struct {
	c  *tls.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func (p *loopPool) get() (*loopConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		u := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return u, nil
	}
	p.mu.Unlock()
	c, err := tls.Dial("tcp", p.addr, p.cfg)
	if err != nil {
		return nil, err
	}
	return &loopConn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, nil
}

func (p *loopPool) put(u *loopConn) {
	p.mu.Lock()
	p.idle = append(p.idle, u)
	p.mu.Unlock()
}

// serve answers one consumer connection: GET requests without bodies, as
// the bench sends them; anything else ends the connection.
func (p *loopPool) serve(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 16<<10)
	bw := bufio.NewWriterSize(conn, 16<<10)
	for {
		req, err := http.ReadRequest(br)
		if err != nil || req.ContentLength != 0 {
			return
		}
		u, err := p.get()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loop reference: dial provider:", err)
			return
		}
		u.bw.WriteString(req.Method + " " + providerPath(req.RequestURI) + " HTTP/1.1\r\nHost: localhost\r\n")
		req.Header.Write(u.bw)
		u.bw.WriteString("\r\n")
		if err := u.bw.Flush(); err != nil {
			return
		}
		resp, err := http.ReadResponse(u.br, req)
		if err != nil {
			return
		}
		bw.WriteString("HTTP/1.1 " + strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode) + "\r\n")
		resp.Header.Write(bw)
		bw.WriteString("\r\n")
		_, err = io.Copy(bw, resp.Body)
		resp.Body.Close()
		if err != nil || resp.Close {
			u.c.Close()
			return
		}
		p.put(u)
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

// startReference runs a reference proxy in a child process.
func (st *stage) startReference(ctx context.Context, kind string) (*child, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{"-role", "reference", "-child-reference", kind, "-child-pki", st.pki, "-child-listen", addr}
	if kind == "ssp-loop" {
		// The SSP's handler: the provider's service root, an audit directory.
		args = append(args, "-child-endpoint", st.prov.root, "-child-audit", filepath.Join(st.dir, "ssp-loop-audit"))
	} else {
		args = append(args, "-child-endpoint", st.prov.addr)
	}
	c, err := st.start("go-"+kind, append([]string{self}, args...)...)
	if err != nil {
		return nil, "", err
	}
	return c, addr, c.waitReady(ctx, addr)
}
