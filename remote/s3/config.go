package s3

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Config holds the settings for reaching an S3 endpoint. The zero value
// means AWS S3 over HTTPS, with credentials from the shared credentials
// file or an IAM role. remote.S3ConfigFromEnv fills it from the AWS
// environment variables.
//
// Print it freely: String redacts the secret key and session token.
type Config struct {
	// Endpoint is a URL such as "https://s3.eu-west-1.amazonaws.com" or
	// "http://localhost:9000"; "http://" makes the connection insecure.
	// A bare host[:port] means HTTPS. Empty means s3.amazonaws.com.
	Endpoint string
	// Region is the bucket's region. Empty lets the client ask the
	// endpoint (GetBucketLocation) once per bucket.
	Region string
	// AccessKeyID, SecretAccessKey and SessionToken are static
	// credentials. When AccessKeyID is empty, credentials come from the
	// shared credentials file, then from an IAM role.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Profile picks the section of the shared credentials file; empty
	// means AWS_PROFILE, then "default".
	Profile string
	// CredentialsFile reads only this shared credentials file. Empty
	// means the AWS defaults: ~/.aws/config and ~/.aws/credentials, or
	// the files named by AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE.
	CredentialsFile string
	// CABundle names a PEM file of CA certificates that HTTPS endpoints
	// may also be signed by, added to the system's: a private CA of a
	// company's S3-compatible server or TLS-inspecting proxy. The AWS CLI
	// and SDKs read it from AWS_CA_BUNDLE, and so does
	// remote.S3ConfigFromEnv.
	CABundle string
	// SSE is the server-side encryption S3 applies to every object
	// written; the zero value leaves it to the bucket's default.
	SSE SSE
	// Timeouts bound each phase of a request; zero fields take defaults.
	Timeouts Timeouts
}

// Timeouts bound the phases of an S3 request so that an unreachable or
// stalled endpoint fails with an error instead of hanging. Zero fields
// take the defaults named below.
type Timeouts struct {
	// Dial bounds opening a TCP connection (DefaultDialTimeout).
	Dial time.Duration
	// TLSHandshake bounds the TLS handshake (DefaultTLSHandshakeTimeout).
	TLSHandshake time.Duration
	// ResponseHeader bounds the wait for a response once the request has
	// been sent in full (DefaultResponseHeaderTimeout).
	ResponseHeader time.Duration
	// Idle bounds any single read or write on a connection, so a transfer
	// that stops moving fails (DefaultIdleTimeout).
	Idle time.Duration
}

// Default timeouts for S3 requests.
const (
	DefaultDialTimeout           = 10 * time.Second
	DefaultTLSHandshakeTimeout   = 10 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleTimeout           = 2 * time.Minute
)

// defaultEndpoint is AWS S3's global endpoint.
const defaultEndpoint = "s3.amazonaws.com"

// String describes the configuration without its secrets.
func (c Config) String() string {
	return fmt.Sprintf("s3.Config{Endpoint:%q Region:%q AccessKeyID:%q SecretAccessKey:%s SessionToken:%s Profile:%q CredentialsFile:%q CABundle:%q SSE:%v}",
		c.Endpoint, c.Region, c.AccessKeyID, redacted(c.SecretAccessKey), redacted(c.SessionToken), c.Profile, c.CredentialsFile, c.CABundle, c.SSE)
}

// GoString keeps %#v from printing the secrets.
func (c Config) GoString() string { return c.String() }

func redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// secrets lists the values that must never appear in a message. No
// message is built from them; scrubbing is a second line of defence
// against a server or library that echoes one.
func (c Config) secrets() []string {
	var s []string
	for _, v := range []string{c.SecretAccessKey, c.SessionToken, c.SSE.CustomerKey} {
		if len(v) >= minRedacted {
			s = append(s, v)
		}
	}
	return s
}

// credentials returns static credentials when keys are given, else the
// chain: shared credentials file (profile), then IAM (EC2, ECS, EKS, web
// identity). Whatever secret the chain hands out is noted for Redact, so a
// profile's session token is masked wherever the same token from the
// environment is.
func (c Config) credentials() (*credentials.Credentials, error) {
	noteSecrets(c.SecretAccessKey, c.SessionToken)
	if c.AccessKeyID != "" || c.SecretAccessKey != "" {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, errors.New("incomplete S3 credentials: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		return credentials.NewStaticV4(c.AccessKeyID, c.SecretAccessKey, c.SessionToken), nil
	}
	return credentials.New(noting{credentials.NewChainCredentials([]credentials.Provider{
		&credentials.FileAWSCredentials{Filename: c.CredentialsFile, Profile: c.Profile},
		&credentials.IAM{},
	})}), nil
}

// noting is a credentials provider that notes the secrets its inner
// provider retrieves (see noteSecrets).
type noting struct {
	inner *credentials.Credentials
}

// RetrieveWithCredContext implements credentials.Provider.
func (n noting) RetrieveWithCredContext(cc *credentials.CredContext) (credentials.Value, error) {
	v, err := n.inner.GetWithContext(cc)
	noteSecrets(v.SecretAccessKey, v.SessionToken)
	return v, err
}

// Retrieve implements credentials.Provider.
func (n noting) Retrieve() (credentials.Value, error) {
	return n.RetrieveWithCredContext(nil)
}

// IsExpired implements credentials.Provider.
func (n noting) IsExpired() bool { return n.inner.IsExpired() }

// endpoint is a parsed S3 endpoint.
type endpoint struct {
	host   string // host[:port], as minio-go wants it
	secure bool
}

// String is the endpoint as a URL, for messages.
func (e endpoint) String() string {
	if e.secure {
		return "https://" + e.host
	}
	return "http://" + e.host
}

func parseEndpoint(s string) (endpoint, error) {
	if s == "" {
		return endpoint{host: defaultEndpoint, secure: true}, nil
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the input may hold credentials: do not echo it
		}
		return endpoint{}, fmt.Errorf("invalid S3 endpoint: %w", err)
	}
	if u.User != nil {
		return endpoint{}, errors.New("invalid S3 endpoint: credentials belong in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, not in the URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return endpoint{}, fmt.Errorf("invalid S3 endpoint %q: scheme must be http or https", u.Redacted())
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return endpoint{}, fmt.Errorf("invalid S3 endpoint %q: want scheme://host[:port] without a path", u.Redacted())
	}
	return endpoint{host: u.Host, secure: u.Scheme == "https"}, nil
}

func (t Timeouts) orDefaults() Timeouts {
	def := func(d, v time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return v
	}
	return Timeouts{
		Dial:           def(t.Dial, DefaultDialTimeout),
		TLSHandshake:   def(t.TLSHandshake, DefaultTLSHandshakeTimeout),
		ResponseHeader: def(t.ResponseHeader, DefaultResponseHeaderTimeout),
		Idle:           def(t.Idle, DefaultIdleTimeout),
	}
}

// newTransport is minio-go's default transport with every phase bounded,
// trusting the CAs of caBundle besides the system's.
func newTransport(secure bool, t Timeouts, caBundle string) (*http.Transport, error) {
	t = t.orDefaults()
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, err
	}
	if secure && caBundle != "" {
		pool, err := caPool(caBundle)
		if err != nil {
			return nil, err
		}
		tls := tr.TLSClientConfig.Clone()
		tls.RootCAs = pool
		tr.TLSClientConfig = tls
	}
	dialer := &net.Dialer{Timeout: t.Dial, KeepAlive: 30 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &idleTimeoutConn{Conn: conn, timeout: t.Idle}, nil
	}
	tr.TLSHandshakeTimeout = t.TLSHandshake
	tr.ResponseHeaderTimeout = t.ResponseHeader
	tr.MaxIdleConnsPerHost = 32
	return tr, nil
}

// caPool is the system's CA certificates and those of the PEM file
// caBundle, as the AWS SDKs build it for AWS_CA_BUNDLE.
func caPool(caBundle string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system pool on this platform: the bundle alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("AWS_CA_BUNDLE: %s holds no PEM certificate", caBundle)
	}
	return pool, nil
}

// idleTimeoutConn fails a read or write that makes no progress within
// timeout. Deadlines move forward with every call, so a long transfer that
// keeps moving is never cut; a stalled one is.
type idleTimeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *idleTimeoutConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *idleTimeoutConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// newClient builds a minio-go client for cfg. The client does not retry
// (MaxRetries 1): retries belong to remote.WithRetry, which knows which
// requests are safe to repeat; a conditional write repeated inside the
// client could turn a success into a reported conflict.
func newClient(cfg Config) (*minio.Client, endpoint, error) {
	ep, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, endpoint{}, err
	}
	creds, err := cfg.credentials()
	if err != nil {
		return nil, endpoint{}, err
	}
	tr, err := newTransport(ep.secure, cfg.Timeouts, cfg.CABundle)
	if err != nil {
		return nil, endpoint{}, err
	}
	lookup := minio.BucketLookupPath
	if s3utils.IsAmazonEndpoint(url.URL{Host: ep.host}) {
		lookup = minio.BucketLookupAuto
	}
	client, err := minio.New(ep.host, &minio.Options{
		Creds:        creds,
		Secure:       ep.secure,
		Transport:    tr,
		Region:       cfg.Region,
		BucketLookup: lookup,
		MaxRetries:   1,
	})
	if err != nil {
		return nil, endpoint{}, fmt.Errorf("S3 endpoint %s: %w", ep, err)
	}
	return client, ep, nil
}
