// Package certs is the development PKI: a local CA, the server and client certificates the SSP,
// the demonstrator and the default consumer present, and the CRL the SSP checks client
// certificates against.
package certs

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The file names of the dev PKI inside its directory; the configuration and the CLI refer to them
// so that every part of sspemu finds the same files.
const (
	CAFile           = "ca.pem"
	CAKeyFile        = "ca-key.pem"
	SSPServerFile    = "ssp-server.pem"
	SSPServerKeyFile = "ssp-server-key.pem"
	SSPClientFile    = "ssp-client.pem"
	SSPClientKeyFile = "ssp-client-key.pem"
	ConsumerFile     = "consumer.pem"
	ConsumerKeyFile  = "consumer-key.pem"
	ProviderFile     = "provider.pem"
	ProviderKeyFile  = "provider-key.pem"
	CRLFile          = "crl.pem"
)

// DefaultConsumerFQDN is the CN and DNS SAN of consumer.pem unless Options says otherwise; it is the
// FQDN the default registry gives the example consumer, so the certificate-to-Ssp-From check passes.
const DefaultConsumerFQDN = "consumer.sspemu.localhost"

// SSPClientFQDN is the CN and DNS SAN of ssp-client.pem, the SSP's identity toward providers.
const SSPClientFQDN = "ssp.sspemu.localhost"

// DefaultKeyBits is the RSA modulus size used when an option leaves KeyBits zero; 2048 is what
// Spine endpoints are issued with.
const DefaultKeyBits = 2048

// caValidityYears is how long the dev CA lives; long enough that nobody regenerates it by surprise.
const caValidityYears = 10

// leafValidity is the default lifetime of a leaf: 825 days, the longest that browsers and Apple
// platforms accept for a TLS server certificate.
const leafValidity = 825 * 24 * time.Hour

// backdate is how far before now certificates start, so small clock skew between hosts or
// containers does not make a fresh certificate "not yet valid".
const backdate = time.Hour

// Purpose says whether a leaf authenticates a TLS client or a TLS server; it selects the one
// extended key usage the certificate carries, so a client certificate cannot serve and vice versa.
type Purpose int

// The purposes a leaf can have.
const (
	Client Purpose = iota + 1
	Server
)

// String returns "client" or "server", for messages.
func (p Purpose) String() string {
	switch p {
	case Client:
		return "client"
	case Server:
		return "server"
	default:
		return fmt.Sprintf("Purpose(%d)", int(p))
	}
}

func (p Purpose) extKeyUsage() ([]x509.ExtKeyUsage, error) {
	switch p {
	case Client:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	case Server:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, nil
	default:
		return nil, fmt.Errorf("certificate purpose %d is neither client nor server", int(p))
	}
}

// Options tunes Init and Ensure; the zero value gives the documented defaults.
type Options struct {
	// ConsumerFQDN is the CN and DNS SAN of consumer.pem; empty means DefaultConsumerFQDN.
	ConsumerFQDN string
	// KeyBits is the RSA modulus size of every key; zero means DefaultKeyBits.
	KeyBits int
}

func (o Options) withDefaults() (Options, error) {
	if o.ConsumerFQDN == "" {
		o.ConsumerFQDN = DefaultConsumerFQDN
	}
	if err := validDNSName(o.ConsumerFQDN); err != nil {
		return o, fmt.Errorf("consumer FQDN: %w", err)
	}
	bits, err := keyBits(o.KeyBits)
	if err != nil {
		return o, err
	}
	o.KeyBits = bits
	return o, nil
}

func keyBits(bits int) (int, error) {
	switch {
	case bits == 0:
		return DefaultKeyBits, nil
	case bits < 0:
		return 0, fmt.Errorf("key size %d bits is negative", bits)
	default:
		return bits, nil
	}
}

// Files lists every file of a complete dev PKI, in the order Init writes them.
func Files() []string {
	return []string{
		CAKeyFile, CAFile,
		SSPServerKeyFile, SSPServerFile,
		SSPClientKeyFile, SSPClientFile,
		ConsumerKeyFile, ConsumerFile,
		ProviderKeyFile, ProviderFile,
		CRLFile,
	}
}

// leafSpec describes one leaf Init writes.
type leafSpec struct {
	certFile, keyFile string
	role              string // organizational unit, so the subject says which file it is
	commonName        string
	dnsNames          []string
	ips               []net.IP
	purpose           Purpose
}

// Init writes the whole dev PKI into dir, creating dir with mode 0700. Without force it refuses,
// naming every file that already exists, and writes nothing, so an existing CA that consumers
// already trust is never replaced by accident.
func Init(dir string, force bool, opt Options) error {
	opt, err := opt.withDefaults()
	if err != nil {
		return err
	}
	if !force {
		if err := refuseExisting(dir, Files()); err != nil {
			return err
		}
	}

	// Everything is generated in memory first, so a failure here leaves dir untouched.
	now := time.Now()
	caCert, caKey, caCertPEM, caKeyPEM, err := newCA(now, opt.KeyBits)
	if err != nil {
		return err
	}
	localhost := []net.IP{net.IPv4(127, 0, 0, 1).To4(), net.IPv6loopback}
	leaves := []leafSpec{
		{SSPServerFile, SSPServerKeyFile, "ssp-server", "localhost", []string{"localhost"}, localhost, Server},
		{SSPClientFile, SSPClientKeyFile, "ssp-client", SSPClientFQDN, []string{SSPClientFQDN}, nil, Client},
		{ConsumerFile, ConsumerKeyFile, "consumer", opt.ConsumerFQDN, []string{opt.ConsumerFQDN}, nil, Client},
		{ProviderFile, ProviderKeyFile, "provider", "localhost", []string{"localhost"}, localhost, Server},
	}
	files := []pemFile{
		{CAKeyFile, caKeyPEM, keyMode},
		{CAFile, caCertPEM, certMode},
	}
	for _, l := range leaves {
		certPEM, keyPEM, err := newLeaf(caCert, caKey, leafTemplate{
			role: l.role, commonName: l.commonName, dnsNames: l.dnsNames, ips: l.ips, purpose: l.purpose,
			notBefore: now.Add(-backdate), notAfter: now.Add(leafValidity), keyBits: opt.KeyBits,
		})
		if err != nil {
			return fmt.Errorf("%s: %w", l.certFile, err)
		}
		files = append(files, pemFile{l.keyFile, keyPEM, keyMode}, pemFile{l.certFile, certPEM, certMode})
	}
	crlPEM, err := newCRL(caCert, caKey, big.NewInt(1), nil, now)
	if err != nil {
		return err
	}
	files = append(files, pemFile{CRLFile, crlPEM, certMode})

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create pki directory: %w", err)
	}
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// Ensure creates the dev PKI when dir has no ca.pem and reports created=true; when ca.pem exists
// it checks that every file of the PKI is present and readable, naming each missing or unreadable
// one, so `serve` fails at start with a fix-it message instead of at the first handshake.
func Ensure(dir string, opt Options) (created bool, err error) {
	_, err = os.Stat(filepath.Join(dir, CAFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := Init(dir, false, opt); err != nil {
			return false, err
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("pki file %s: %w", filepath.Join(dir, CAFile), err)
	}
	var errs []error
	for _, name := range Files() {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("pki file %s: %w", path, err))
			continue
		}
		if !containsPEM(data) {
			errs = append(errs, fmt.Errorf("pki file %s: no PEM block found", path))
		}
	}
	if len(errs) > 0 {
		errs = append(errs, fmt.Errorf("pki directory %s is incomplete: recreate it with `sspemu certs init --force --dir %s`", dir, dir))
		return false, errors.Join(errs...)
	}
	return false, nil
}

// IssueOptions tunes Issue; the zero value of each field gives the documented default.
type IssueOptions struct {
	// Purpose is Client or Server and is required.
	Purpose Purpose
	// Force allows replacing an existing certificate or key of the same name.
	Force bool
	// NotBefore and NotAfter bound the validity; zero means one hour ago and 825 days from now.
	// Setting them lets tests make expired or not-yet-valid certificates.
	NotBefore, NotAfter time.Time
	// KeyBits is the RSA modulus size; zero means DefaultKeyBits.
	KeyBits int
}

// Issue writes one more leaf, <name>.pem and <name>-key.pem, into dir signed by the CA found
// there. An IP address name becomes an IP SAN; any other name must be a DNS name and becomes the
// DNS SAN and the CN. In file names ':' becomes '_' and a leading "*." becomes "_wildcard.", so
// IPv6 and wildcard names give portable file names. It refuses to overwrite without opt.Force.
func Issue(dir, name string, opt IssueOptions) (certPath, keyPath string, err error) {
	tmpl := leafTemplate{role: "issued", purpose: opt.Purpose}
	if _, err := opt.Purpose.extKeyUsage(); err != nil {
		return "", "", err
	}
	if ip := net.ParseIP(name); ip != nil {
		if ip4 := ip.To4(); ip4 != nil {
			ip = ip4
		}
		tmpl.ips = []net.IP{ip}
	} else {
		if err := validDNSName(name); err != nil {
			return "", "", fmt.Errorf("certificate name: %w", err)
		}
		tmpl.commonName = name
		tmpl.dnsNames = []string{name}
	}
	if tmpl.keyBits, err = keyBits(opt.KeyBits); err != nil {
		return "", "", err
	}
	now := time.Now()
	tmpl.notBefore, tmpl.notAfter = opt.NotBefore, opt.NotAfter
	if tmpl.notBefore.IsZero() {
		tmpl.notBefore = now.Add(-backdate)
	}
	if tmpl.notAfter.IsZero() {
		tmpl.notAfter = now.Add(leafValidity)
	}
	if !tmpl.notAfter.After(tmpl.notBefore) {
		return "", "", fmt.Errorf("certificate %q: not-after %s is not after not-before %s", name,
			tmpl.notAfter.Format(time.RFC3339), tmpl.notBefore.Format(time.RFC3339))
	}

	base := fileBase(name)
	certName, keyName := base+".pem", base+"-key.pem"
	if isReserved(certName) || isReserved(keyName) {
		return "", "", fmt.Errorf("certificate name %q would overwrite a file of the dev PKI", name)
	}
	certPath, keyPath = filepath.Join(dir, certName), filepath.Join(dir, keyName)
	if !opt.Force {
		if err := refuseExisting(dir, []string{certName, keyName}); err != nil {
			return "", "", err
		}
	}

	caCert, caKey, err := loadCA(dir)
	if err != nil {
		return "", "", err
	}
	certPEM, keyPEM, err := newLeaf(caCert, caKey, tmpl)
	if err != nil {
		return "", "", fmt.Errorf("certificate %q: %w", name, err)
	}
	// The key goes first: a certificate without its key is useless but harmless, the reverse
	// would leave a stale certificate next to a fresh key.
	if err := writeFileAtomic(keyPath, keyPEM, keyMode); err != nil {
		return "", "", err
	}
	if err := writeFileAtomic(certPath, certPEM, certMode); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

// fileBase turns a certificate name into the base of its file names.
func fileBase(name string) string {
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		name = "_wildcard." + rest
	}
	return strings.ReplaceAll(name, ":", "_")
}

func isReserved(file string) bool {
	for _, f := range Files() {
		if f == file {
			return true
		}
	}
	return false
}

// validDNSName accepts what may go into a DNS SAN: letter-digit-hyphen labels separated by dots,
// optionally a leading "*." wildcard; it also keeps path separators out of file names.
func validDNSName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	if len(name) > 253 {
		return fmt.Errorf("name %q is longer than 253 characters", name)
	}
	labels := strings.Split(strings.TrimPrefix(name, "*."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Errorf("name %q has an empty or over-long label", name)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("name %q has a label that starts or ends with '-'", name)
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("name %q contains %q, which is not allowed in a DNS name", name, r)
			}
		}
	}
	return nil
}

// refuseExisting returns an error naming every file of names that already exists in dir.
func refuseExisting(dir string, names []string) error {
	var errs []error
	for _, name := range names {
		path := filepath.Join(dir, name)
		_, err := os.Lstat(path)
		switch {
		case err == nil:
			errs = append(errs, fmt.Errorf("%s already exists (use --force to overwrite)", path))
		case !errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("check %s: %w", path, err))
		}
	}
	return errors.Join(errs...)
}

// randomSerial returns a random positive 128-bit serial number, as RFC 5280 and mkcert do, so
// two certificates never share a serial even across regenerated CAs.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func newKey(bits int) (*rsa.PrivateKey, []byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("generate %d-bit RSA key: %w", bits, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode private key: %w", err)
	}
	return key, encodePEM(pemPrivateKey, der), nil
}

func newCA(now time.Time, bits int) (*x509.Certificate, crypto.Signer, []byte, []byte, error) {
	key, keyPEM, err := newKey(bits)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("ca: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("ca: %w", err)
	}
	// The suffix tells apart CAs regenerated on different machines or days, as mkcert's does,
	// when several end up in one trust store.
	suffix := hex.EncodeToString(serial.Bytes()[:4])
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization:       []string{"sspemu development PKI"},
			OrganizationalUnit: []string{"not for use on the NHS network"},
			CommonName:         "sspemu development CA " + suffix,
		},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(caValidityYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("ca: sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("ca: parse new certificate: %w", err)
	}
	return cert, key, encodePEM(pemCertificate, der), keyPEM, nil
}

type leafTemplate struct {
	role, commonName    string
	dnsNames            []string
	ips                 []net.IP
	purpose             Purpose
	notBefore, notAfter time.Time
	keyBits             int
}

func newLeaf(ca *x509.Certificate, caKey crypto.Signer, t leafTemplate) (certPEM, keyPEM []byte, err error) {
	eku, err := t.purpose.extKeyUsage()
	if err != nil {
		return nil, nil, err
	}
	key, keyPEM, err := newKey(t.keyBits)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization:       []string{"sspemu development PKI"},
			OrganizationalUnit: []string{t.role},
			CommonName:         t.commonName,
		},
		DNSNames:              t.dnsNames,
		IPAddresses:           t.ips,
		NotBefore:             t.notBefore,
		NotAfter:              t.notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	return encodePEM(pemCertificate, der), keyPEM, nil
}

// loadCA reads the CA certificate and key from dir and checks they belong together, so a
// mismatched pair is caught before anything is signed with it.
func loadCA(dir string) (*x509.Certificate, crypto.Signer, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, CAKeyFile)
	cert, err := LoadCertificate(certPath)
	if err != nil {
		return nil, nil, err
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	key, err := loadPrivateKey(keyPath)
	if err != nil {
		return nil, nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s does not hold the key of %s", keyPath, certPath)
	}
	return cert, key, nil
}
