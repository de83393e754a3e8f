// Package proxy is the Spine Secure Proxy itself: the TLS listener, target
// parsing, the check chain, forwarding over mutual TLS and the SSP's error
// bodies.
package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"time"

	"sspemu/agreements"
	"sspemu/certs"
)

// Config is the ssp: section of config.yaml.
type Config struct {
	Listen           string        `mapstructure:"listen"`
	TLS              TLSConfig     `mapstructure:"tls"`
	ClientCert       string        `mapstructure:"client_cert"`
	ClientKey        string        `mapstructure:"client_key"`
	ProviderCA       string        `mapstructure:"provider_ca"`
	Fidelity         string        `mapstructure:"fidelity"`
	JWT              string        `mapstructure:"jwt"`
	JWTSkew          time.Duration `mapstructure:"jwt_skew"`
	InteractionRoute string        `mapstructure:"interaction_route"`
	UpstreamTimeout  time.Duration `mapstructure:"upstream_timeout"`

	// The consumer leg's limits; zero means the default below.
	BodyTimeout     time.Duration `mapstructure:"body_timeout"`      // the whole request body must arrive within this, from the end of the head
	IdleTimeout     time.Duration `mapstructure:"idle_timeout"`      // a keep-alive connection idle this long is closed
	MaxBodyBytes    int64         `mapstructure:"max_body_bytes"`    // a larger request body is refused with 413
	MaxHeaderFields int           `mapstructure:"max_header_fields"` // more header fields are refused with 431
}

// The defaults of the consumer leg's limits: nginx's client_body_timeout
// and keepalive_timeout; a body limit far above any GP Connect resource
// (an appointment is a few KiB) yet small enough that the SSP can hold a
// whole body before it dials a provider; Apache's LimitRequestFields.
const (
	DefaultBodyTimeout     = 60 * time.Second
	DefaultIdleTimeout     = 75 * time.Second
	DefaultMaxBodyBytes    = 4 << 20
	DefaultMaxHeaderFields = 100
)

func (c Config) bodyTimeout() time.Duration { return orDefault(c.BodyTimeout, DefaultBodyTimeout) }
func (c Config) idleTimeout() time.Duration { return orDefault(c.IdleTimeout, DefaultIdleTimeout) }
func (c Config) maxBodyBytes() int64        { return orDefault(c.MaxBodyBytes, DefaultMaxBodyBytes) }
func (c Config) maxHeaderFields() int       { return orDefault(c.MaxHeaderFields, DefaultMaxHeaderFields) }

func orDefault[T time.Duration | int64 | int](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// TLSConfig is the consumer-facing TLS of ssp.tls.
type TLSConfig struct {
	MinVersion string `mapstructure:"min_version"`
	Cert       string `mapstructure:"cert"`
	Key        string `mapstructure:"key"`
	ClientCA   string `mapstructure:"client_ca"`
	CRL        string `mapstructure:"crl"`
}

// The check modes of ssp.jwt and ssp.interaction_route.
const (
	ModeEnforce = "enforce"
	ModeLog     = "log"
	ModeOff     = "off"
)

// ResolvePKI fills every empty certificate path with the dev PKI's file in
// pkiDir, so the rest of the program only sees real paths.
func (c *Config) ResolvePKI(pkiDir string) {
	def := func(p *string, name string) {
		if *p == "" {
			*p = filepath.Join(pkiDir, name)
		}
	}
	def(&c.TLS.Cert, certs.SSPServerFile)
	def(&c.TLS.Key, certs.SSPServerKeyFile)
	def(&c.TLS.ClientCA, certs.CAFile)
	def(&c.TLS.CRL, certs.CRLFile)
	def(&c.ClientCert, certs.SSPClientFile)
	def(&c.ClientKey, certs.SSPClientKeyFile)
	def(&c.ProviderCA, certs.CAFile)
}

// Validate reports every problem of the section at once, each naming its key.
// It checks values only; Files checks the certificate files.
func (c Config) Validate() error {
	var errs []error
	if err := CheckListen(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("ssp.listen: %w", err))
	}
	if _, err := tlsVersion(c.TLS.MinVersion); err != nil {
		errs = append(errs, fmt.Errorf("ssp.tls.min_version: %w", err))
	}
	if _, err := agreements.ParseFidelity(c.Fidelity); err != nil {
		errs = append(errs, fmt.Errorf("ssp.fidelity: %w", err))
	}
	for key, v := range map[string]string{"ssp.jwt": c.JWT, "ssp.interaction_route": c.InteractionRoute} {
		if v != ModeEnforce && v != ModeLog && v != ModeOff {
			errs = append(errs, fmt.Errorf("%s: %q is not enforce, log or off", key, v))
		}
	}
	if c.UpstreamTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ssp.upstream_timeout: %v must be above zero, e.g. 30s", c.UpstreamTimeout))
	}
	if c.JWTSkew < 0 {
		errs = append(errs, fmt.Errorf("ssp.jwt_skew: %v must not be negative", c.JWTSkew))
	}
	if c.BodyTimeout < 0 {
		errs = append(errs, fmt.Errorf("ssp.body_timeout: %v must not be negative (0: the default, %v)", c.BodyTimeout, DefaultBodyTimeout))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, fmt.Errorf("ssp.idle_timeout: %v must not be negative (0: the default, %v)", c.IdleTimeout, DefaultIdleTimeout))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("ssp.max_body_bytes: %d must not be negative (0: the default, %d)", c.MaxBodyBytes, DefaultMaxBodyBytes))
	}
	if c.MaxHeaderFields < 0 {
		errs = append(errs, fmt.Errorf("ssp.max_header_fields: %d must not be negative (0: the default, %d)", c.MaxHeaderFields, DefaultMaxHeaderFields))
	}
	return errors.Join(errs...)
}

// Files checks that every certificate, key and CRL file the section names
// can be read and parsed, naming each one that cannot. pending, when not
// nil, marks paths that do not exist yet because the first start will make
// them (the dev PKI); a check is skipped only when every path it reads is
// pending, so a file the user named is always read.
func (c Config) Files(pending func(path string) bool) error {
	skip := func(paths ...string) bool {
		if pending == nil {
			return false
		}
		for _, p := range paths {
			if !pending(p) {
				return false
			}
		}
		return true
	}
	var errs []error
	if !skip(c.TLS.Cert, c.TLS.Key) {
		if _, err := certs.LoadKeyPair(c.TLS.Cert, c.TLS.Key); err != nil {
			errs = append(errs, fmt.Errorf("ssp.tls.cert/key: %w", err))
		}
	}
	if !skip(c.TLS.ClientCA, c.TLS.CRL) {
		if _, err := certs.LoadCertPool(c.TLS.ClientCA); err != nil {
			errs = append(errs, fmt.Errorf("ssp.tls.client_ca: %w", err))
		} else if ca, err := certs.LoadCertificate(c.TLS.ClientCA); err != nil {
			errs = append(errs, fmt.Errorf("ssp.tls.client_ca: %w", err))
		} else if _, err := certs.NewCRLChecker(c.TLS.CRL, ca); err != nil {
			errs = append(errs, fmt.Errorf("ssp.tls.crl: %w", err))
		}
	}
	if !skip(c.ClientCert, c.ClientKey) {
		if _, err := certs.LoadKeyPair(c.ClientCert, c.ClientKey); err != nil {
			errs = append(errs, fmt.Errorf("ssp.client_cert/client_key: %w", err))
		}
	}
	if !skip(c.ProviderCA) {
		if _, err := certs.LoadCertPool(c.ProviderCA); err != nil {
			errs = append(errs, fmt.Errorf("ssp.provider_ca: %w", err))
		}
	}
	return errors.Join(errs...)
}

// CheckListen reports whether addr is a host:port a listener can take.
func CheckListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("%q has a bad port: %w", addr, err)
	}
	if host != "" && host != "localhost" && net.ParseIP(host) == nil && !agreements.IsHostname(host) {
		return fmt.Errorf("%q has a bad host", addr)
	}
	return nil
}

// SpineCipherSuites are the suites of the Spine families AESGCM+EECDH,
// AESGCM+EDH, AES256+EECDH and AES256+EDH that crypto/tls offers. Go has no
// DHE (EDH) suites and no ECDHE AES256-SHA384 CBC suites; the README lists
// them. Every suite has forward secrecy.
var SpineCipherSuites = []uint16{
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
}

func tlsVersion(s string) (uint16, error) {
	switch s {
	case "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("%q is not \"1.2\" (the Spine's) or \"1.3\"", s)
}

// ServerTLS turns the section into the consumer-facing tls.Config: exactly
// TLS 1.2 by default (the Spine's only version) or exactly TLS 1.3, the Spine
// suites, a client certificate required and verified against client_ca, and
// the CRL checked in VerifyConnection, which also runs on resumed sessions,
// and sessions kept for resumption in the SSP (sessions.go).
func (c Config) ServerTLS() (*tls.Config, error) {
	v, err := tlsVersion(c.TLS.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("ssp.tls.min_version: %w", err)
	}
	cert, err := certs.LoadKeyPair(c.TLS.Cert, c.TLS.Key)
	if err != nil {
		return nil, fmt.Errorf("ssp.tls.cert/key: %w", err)
	}
	pool, err := certs.LoadCertPool(c.TLS.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("ssp.tls.client_ca: %w", err)
	}
	ca, err := certs.LoadCertificate(c.TLS.ClientCA)
	if err != nil {
		return nil, fmt.Errorf("ssp.tls.client_ca: %w", err)
	}
	crl, err := certs.NewCRLChecker(c.TLS.CRL, ca)
	if err != nil {
		return nil, fmt.Errorf("ssp.tls.crl: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   v,
		MaxVersion:   v,
		CipherSuites: SpineCipherSuites,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"http/1.1"},

		VerifyConnection: crl.VerifyConnection,
	}
	newSessionStore(sessionStoreSize).wire(cfg)
	return cfg, nil
}

// ClientTLS is the SSP's side of the provider leg: its own client
// certificate, providers verified against provider_ca, TLS 1.2 or later, and
// session resumption so the pool's new connections are cheap.
func (c Config) ClientTLS() (*tls.Config, error) {
	cert, err := certs.LoadKeyPair(c.ClientCert, c.ClientKey)
	if err != nil {
		return nil, fmt.Errorf("ssp.client_cert/client_key: %w", err)
	}
	pool, err := certs.LoadCertPool(c.ProviderCA)
	if err != nil {
		return nil, fmt.Errorf("ssp.provider_ca: %w", err)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{cert},
		RootCAs:            pool,
		ClientSessionCache: tls.NewLRUClientSessionCache(256),
		NextProtos:         []string{"http/1.1"},
	}, nil
}

// certNames lists the host names a client certificate speaks for: its CN
// and DNS SANs.
func certNames(c *x509.Certificate) []string {
	names := make([]string, 0, 1+len(c.DNSNames))
	if c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	for _, n := range c.DNSNames {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}
