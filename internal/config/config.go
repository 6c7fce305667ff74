// Package config owns greypit's configuration: one struct with defaults,
// strict TOML decoding of the config file, `-set section.key=value`
// overrides on top of it, and validation.
//
// Decoding is strict so that a misspelt key is an error rather than a
// silently ignored setting, and every error names the offending key as
// section.key so operators can find it. The annotated list of every key
// with its default is greypit.example.toml at the repository root.
package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Config is the whole configuration.
type Config struct {
	SMTP     SMTP     `toml:"smtp"`
	Backend  Backend  `toml:"backend"`
	Greylist Greylist `toml:"greylist"`
	Store    Store    `toml:"store"`
	Lists    Lists    `toml:"lists"`
	Control  Control  `toml:"control"`
	Log      Log      `toml:"log"`
	Tarpit   Tarpit   `toml:"tarpit"`
	Traps    Traps    `toml:"traps"`
	Networks Networks `toml:"networks"`
	DNSBL    DNSBL    `toml:"dnsbl"`
	Big      Big      `toml:"bigsenders"`

	Follow     Follow     `toml:"follow"`     // follow.go
	Feedback   Feedback   `toml:"feedback"`   // follow.go
	API        API        `toml:"api"`        // follow.go
	Candidates Candidates `toml:"candidates"` // follow.go
	Metrics    Metrics    `toml:"metrics"`    // ops.go
	Policy     Policy     `toml:"policy"`
}

// Networks configures network and ASN reputation, prefix escalation and
// the session history behind `greypit report networks`.
type Networks struct {
	PrefixV4         int        `toml:"prefix_v4"`         // black hosts are counted per IPv4 /prefix_v4
	PrefixV6         int        `toml:"prefix_v6"`         // ... and per IPv6 /prefix_v6
	EscalateHosts    int        `toml:"escalate_hosts"`    // distinct black hosts that turn a prefix black; 0 = never
	EscalateTTL      Duration   `toml:"escalate_ttl"`      // longest an escalation lasts before it is re-evaluated
	HalfLife         Duration   `toml:"half_life"`         // a black verdict's weight in the score halves this often
	NeverEscalate    StringList `toml:"never_escalate"`    // prefixes and AS numbers ("AS15169") never escalated
	ASNDB            string     `toml:"asn_db"`            // iptoasn TSV (.tsv, .tsv.gz) or MaxMind ASN .mmdb; "" = none
	EvaluateEvery    Duration   `toml:"evaluate_every"`    // how often all prefixes are re-evaluated
	HistoryRetention Duration   `toml:"history_retention"` // session events kept for reports; "0s" = none recorded
}

// DNSBL configures the DNS blocklist client and greypit's own DNSBL zone.
type DNSBL struct {
	Sites          StringList `toml:"sites"`           // postscreen syntax: zone[=filter][*weight]
	Threshold      int        `toml:"threshold"`       // score >= threshold: black
	AllowThreshold int        `toml:"allow_threshold"` // score <= it (< 0): skips greylisting in selective mode; 0 = off
	Timeout        Duration   `toml:"timeout"`         // all lookups of one host; the banner never waits longer
	Resolver       string     `toml:"resolver"`        // recursive resolver host[:port] for DNSBL, SPF and bigsenders; "" = /etc/resolv.conf
	CacheSize      int        `toml:"cache_size"`      // answers kept (by TTL)
	HealthEvery    Duration   `toml:"health_every"`    // RFC 5782 test-entry checks of every list
	ServeListen    string     `toml:"serve_listen"`    // UDP+TCP address of greypit's own zone; "" = off
	ServeZone      string     `toml:"serve_zone"`      // the zone's name, e.g. "bl.example.org"
	ServeTTL       Duration   `toml:"serve_ttl"`       // TTL of its answers
	ServeRate      int        `toml:"serve_rate"`      // queries a second per client network; 0 = unlimited
}

// Big configures the big-sender allowlist (internal/bigsenders).
type Big struct {
	Enabled bool       `toml:"enabled"` // resolve the built-in list and treat its networks as white
	Refresh Duration   `toml:"refresh"` // how often the SPF records are resolved again
	Disable StringList `toml:"disable"` // provider domains of the built-in list to leave out
	Add     StringList `toml:"add"`     // more providers: "domain" or "domain=spf-name"
}

// Policy configures the Postfix policy server (postgrey's job).
type Policy struct {
	Listen              string     `toml:"listen"`                 // TCP host:port or unix socket path; "" = off
	GreylistAction      string     `toml:"greylist_action"`        // Postfix action for a greylisted request
	GreylistText        string     `toml:"greylist_text"`          // after the action; %s seconds left, %r recipient domain
	BlackAction         string     `toml:"black_action"`           // REJECT or DEFER, for black clients
	XGreylistHeader     string     `toml:"x_greylist_header"`      // PREPENDed on a first pass; "" = none
	AutoWhitelistClient int        `toml:"auto_whitelist_clients"` // passes before a client is white; 0 = never
	WhitelistClients    StringList `toml:"whitelist_clients"`      // postgrey whitelist_clients files (+ .local)
	WhitelistRecipients StringList `toml:"whitelist_recipients"`   // postgrey whitelist_recipients files (+ .local)
	Privacy             bool       `toml:"privacy"`                // store tuple keys as SHA-1 hashes (postgrey --privacy)
}

// Tarpit configures what black hosts meet, and the pregreet test.
type Tarpit struct {
	Stutter        Duration `toml:"stutter"`          // delay between two bytes sent to a black host
	GreyStutterFor Duration `toml:"grey_stutter_for"` // grey sessions are stuttered this long after connect (spamd -S)
	ReplyCode      int      `toml:"reply_code"`       // final reply to a black host's message: 4xx (retry) or 5xx (bounce)
	Blackhole      bool     `toml:"blackhole"`        // answer 250 and drop the message: loses mail sent by mistake
	MaxSessions    int      `toml:"max_sessions"`     // black sessions held at once; above it, 421
	MaxPerPrefix   int      `toml:"max_per_prefix"`   // black sessions per greylist prefix; above it, 421
	Pressure       float64  `toml:"pressure"`         // share of max_sessions above which replies are no longer dripped
	IdleTimeout    Duration `toml:"idle_timeout"`     // a black host silent this long is dropped
	SessionTimeout Duration `toml:"session_timeout"`  // a black session ends after this long
	MaxDataSize    int64    `toml:"max_data_size"`    // bytes of message data read from a black host
	PregreetTTL    Duration `toml:"pregreet_ttl"`     // how long an early talker stays black
	SampleFile     string   `toml:"sample_file"`      // keep samples of what black hosts send (JSON lines); "" = off
	SampleMaxSize  int64    `toml:"sample_max_size"`  // the sample file is rotated (one .1 kept) at this size
}

// SMTP configures the listening side.
type SMTP struct {
	Listen         StringList `toml:"listen"`           // ":25" means all IPv4 and IPv6 addresses
	Hostname       string     `toml:"hostname"`         // used in the banner and EHLO reply
	GreetWait      Duration   `toml:"greet_wait"`       // grey hosts wait this long before the banner
	CommandTimeout Duration   `toml:"command_timeout"`  // RFC 5321 §4.5.3.2.7 server timeout
	SessionTimeout Duration   `toml:"session_timeout"`  // whole-session limit
	DrainTimeout   Duration   `toml:"drain_timeout"`    // on SIGTERM, sessions get this long to finish
	DataTimeout    Duration   `toml:"data_timeout"`     // limit for receiving the message data
	MaxSessions    int        `toml:"max_sessions"`     // above it new connections get 421
	MaxErrors      int        `toml:"max_errors"`       // bad/unknown commands before 421 and close
	MaxRecipients  int        `toml:"max_recipients"`   // RCPT TO commands per transaction
	MaxMessageSize int64      `toml:"max_message_size"` // bytes; advertised in SIZE and checked
	TLSCert        string     `toml:"tls_cert"`         // PEM file; with tls_key enables STARTTLS
	TLSKey         string     `toml:"tls_key"`          // PEM file; both or neither
	ProxyProtocol  bool       `toml:"proxy_protocol"`   // every connection starts with a PROXY v1/v2 header
	ProxyTrusted   StringList `toml:"proxy_trusted"`    // CIDRs of the load balancers allowed to send it
	ProxyTimeout   Duration   `toml:"proxy_timeout"`    // the header must arrive within this
}

// Backend configures the real MTA that white hosts are spliced to.
type Backend struct {
	Address        string   `toml:"address"`         // host:port
	Handoff        string   `toml:"handoff"`         // proxy-v2 | xclient | plain
	ConnectTimeout Duration `toml:"connect_timeout"` // dialing the backend
	ReplyTimeout   Duration `toml:"reply_timeout"`   // waiting for a backend reply
	HelloName      string   `toml:"helo_name"`       // empty: smtp.hostname; see BackendHelloName
}

// Greylist holds the greylisting timings and how client addresses are grouped.
type Greylist struct {
	PassDelay   Duration `toml:"pass_delay"`   // a retry passes only after this long
	RetryWindow Duration `toml:"retry_window"` // a pending tuple is forgotten after this long
	WhiteTTL    Duration `toml:"white_ttl"`    // a white host stays white this long after its last delivery
	PrefixV4    int      `toml:"prefix_v4"`    // IPv4 clients are grouped by this prefix length
	PrefixV6    int      `toml:"prefix_v6"`    // IPv6 clients are grouped by this prefix length
	Mode        string   `toml:"mode"`         // all (postgrey) | selective (hosts with good signals skip it)
	SPF         bool     `toml:"spf"`          // key on the MAIL FROM domain when it passes SPF
	SPFTimeout  Duration `toml:"spf_timeout"`  // bound of one SPF check; on timeout the prefix key is used
}

// Store configures the state database.
type Store struct {
	Path           string   `toml:"path"`             // bbolt file
	ExpireEvery    Duration `toml:"expire_every"`     // how often expired entries are swept
	GreyFlushEvery Duration `toml:"grey_flush_every"` // greylist sightings are written in batches this often; 0 = each at once

	Backend           string     `toml:"backend"`               // StoreBolt or StoreRedis
	RedisAddrs        StringList `toml:"redis_addrs"`           // host:port; several without a master name: Cluster
	RedisMaster       string     `toml:"redis_sentinel_master"` // Sentinel master name; redis_addrs are then the sentinels
	RedisPasswordFile string     `toml:"redis_password_file"`   // file holding the password (first line)
	RedisDB           int        `toml:"redis_db"`
	RedisPrefix       string     `toml:"redis_prefix"`        // key namespace
	RedisTimeout      Duration   `toml:"redis_timeout"`       // dial, read and write timeout
	RedisWaitReplicas int        `toml:"redis_wait_replicas"` // WAIT for this many replicas after a white entry write; 0 = no
	RedisWaitTimeout  Duration   `toml:"redis_wait_timeout"`  // for at most this long (< redis_timeout)
	Unreachable       string     `toml:"unreachable"`         // StoreTempfail or StoreOpen
}

// store.backend and store.unreachable values.
const (
	StoreBolt     = "bolt"
	StoreRedis    = "redis"
	StoreTempfail = "tempfail"
	StoreOpen     = "open"
)

// Lists names the static allow and block list files.
type Lists struct {
	Allow     StringList `toml:"allow"`
	Block     StringList `toml:"block"`
	DROP      StringList `toml:"drop"`       // Spamhaus DROP files, text or JSON
	SpamdConf StringList `toml:"spamd_conf"` // spamd.conf files (method=file lists only)
	PollEvery Duration   `toml:"poll_every"` // list files are checked for changes this often; "0s" = only on SIGHUP
}

// Control configures the control socket.
type Control struct {
	Socket string `toml:"socket"` // empty: store.path + ".sock"; see ControlSocket
}

// Log configures logging.
type Log struct {
	Level  string `toml:"level"`  // debug | info | warn | error
	Format string `toml:"format"` // text | json
}

// Greylisting modes.
const (
	GreylistAll       = "all"
	GreylistSelective = "selective"
)

// Handoff modes.
const (
	HandoffProxyV2 = "proxy-v2"
	HandoffXClient = "xclient"
	HandoffPlain   = "plain"
)

// Default returns the configuration used when a key is not set.
func Default() *Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Config{
		SMTP: SMTP{
			Listen:         StringList{":25"},
			Hostname:       host,
			GreetWait:      Duration{3 * time.Second},
			CommandTimeout: Duration{5 * time.Minute},
			SessionTimeout: Duration{30 * time.Minute},
			DrainTimeout:   Duration{30 * time.Second},
			DataTimeout:    Duration{10 * time.Minute},
			MaxSessions:    2000,
			MaxErrors:      10,
			MaxRecipients:  100,
			MaxMessageSize: 50 << 20,
			ProxyTrusted:   StringList{"127.0.0.0/8", "::1/128"},
			ProxyTimeout:   Duration{5 * time.Second},
		},
		Backend: Backend{
			Address:        "127.0.0.1:10025",
			Handoff:        HandoffProxyV2,
			ConnectTimeout: Duration{10 * time.Second},
			ReplyTimeout:   Duration{5 * time.Minute},
		},
		Greylist: Greylist{
			PassDelay:   Duration{3 * time.Minute},
			RetryWindow: Duration{48 * time.Hour},
			WhiteTTL:    Duration{36 * day},
			PrefixV4:    24,
			PrefixV6:    64,
			Mode:        GreylistAll,
			SPF:         true,
			SPFTimeout:  Duration{2 * time.Second},
		},
		Store: Store{
			Path:             "/var/lib/greypit/greypit.db",
			ExpireEvery:      Duration{time.Minute},
			GreyFlushEvery:   Duration{time.Second},
			Backend:          StoreBolt,
			RedisPrefix:      "greypit",
			RedisTimeout:     Duration{2 * time.Second},
			RedisWaitTimeout: Duration{time.Second},
			Unreachable:      StoreTempfail,
		},
		Log:   Log{Level: "info", Format: "text"},
		Lists: Lists{PollEvery: Duration{10 * time.Second}},
		Networks: Networks{
			PrefixV4:         24,
			PrefixV6:         48,
			EscalateHosts:    5,
			EscalateTTL:      Duration{24 * time.Hour},
			HalfLife:         Duration{24 * time.Hour},
			EvaluateEvery:    Duration{time.Minute},
			HistoryRetention: Duration{30 * day},
		},
		Tarpit: Tarpit{
			Stutter:        Duration{time.Second},
			GreyStutterFor: Duration{10 * time.Second},
			ReplyCode:      451,
			MaxSessions:    10000,
			MaxPerPrefix:   100,
			Pressure:       0.9,
			IdleTimeout:    Duration{10 * time.Minute},
			SessionTimeout: Duration{time.Hour},
			MaxDataSize:    1 << 20,
			PregreetTTL:    Duration{24 * time.Hour},
			SampleMaxSize:  10 << 20,
		},
		Traps: defaultTraps(),
		DNSBL: DNSBL{
			Threshold:   1,
			Timeout:     Duration{2 * time.Second},
			CacheSize:   10000,
			HealthEvery: Duration{5 * time.Minute},
			ServeTTL:    Duration{5 * time.Minute},
			ServeRate:   50,
		},
		Big: Big{
			Enabled: true,
			Refresh: Duration{24 * time.Hour},
		},
		Follow:     defaultFollow(),
		Feedback:   defaultFeedback(),
		API:        defaultAPI(),
		Candidates: defaultCandidates(),
		Policy: Policy{
			GreylistAction:      "DEFER_IF_PERMIT",
			GreylistText:        "Greylisted, see http://postgrey.schweikert.ch/help/%r.html",
			BlackAction:         "DEFER",
			XGreylistHeader:     "X-Greylist: delayed %t seconds by greypit-%v at %h; %d",
			AutoWhitelistClient: 5,
		},
	}
}

// ControlSocket returns the control socket path.
func (c *Config) ControlSocket() string {
	if c.Control.Socket != "" {
		return c.Control.Socket
	}
	return c.Store.Path + ".sock"
}

// BackendHelloName returns the name greypit uses when it greets the backend
// itself.
func (c *Config) BackendHelloName() string {
	if c.Backend.HelloName != "" {
		return c.Backend.HelloName
	}
	return c.SMTP.Hostname
}

// Load returns the defaults overridden by the file at path (none if path is
// ""), then by each -set override in order, and validates the result.
func Load(path string, sets []string) (*Config, error) {
	c := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := c.decode(string(data)); err != nil {
			if err.line > 0 {
				return nil, fmt.Errorf("config %s:%d: %s", path, err.line, err.msg)
			}
			return nil, fmt.Errorf("config %s: %s", path, err.msg)
		}
	}
	for _, s := range sets {
		if err := c.Apply(s); err != nil {
			return nil, err
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Apply applies one "section.key=value" override strictly, as if the key
// were set in the config file. The value is read as TOML ("true", "42",
// `["a","b"]`, `"x"`); a value that is not valid TOML is taken as a plain
// string, as is any value of a string or duration key. For list keys a
// plain value is split at commas ("a,b" is ["a","b"], "" is []). Apply does
// not validate; call Validate afterwards.
func (c *Config) Apply(set string) error {
	frag, err := setFragment(set)
	if err != nil {
		return fmt.Errorf("-set %s: %w", set, err)
	}
	nc := *c // c stays as it was if the override is rejected
	if err := nc.decode(frag); err != nil {
		return fmt.Errorf("-set %s: %s", set, err.msg)
	}
	*c = nc
	return nil
}

// decodeError is a decoding error and the line it is on (0: unknown).
type decodeError struct {
	line int
	msg  string
}

// decoderMsg picks apart the decoder's own "line N (last key K)" prefix.
var decoderMsg = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "([^"]*)"\): (.*)$`)

// decode strictly decodes TOML data onto c.
func (c *Config) decode(data string) *decodeError {
	// Parse alone first so syntax errors are told apart from bad values.
	var raw map[string]any
	if _, err := toml.Decode(data, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return &decodeError{pe.Position.Line, pe.Message}
		}
		return &decodeError{0, err.Error()}
	}
	md, err := toml.Decode(data, c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) && pe.LastKey != "" {
			return &decodeError{pe.Position.Line, pe.LastKey + ": " + pe.Message}
		}
		if m := decoderMsg.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return &decodeError{line, m[2] + ": " + m[3]}
		}
		return &decodeError{0, err.Error()}
	}

	bad := map[string]bool{}
	var unknown []string
	report := func(k toml.Key, note string) {
		s := k.String()
		inside := len(k) > 1 && bad[k[:len(k)-1].String()]
		bad[s] = true
		if inside {
			return // the unknown table's name was reported
		}
		unknown = append(unknown, "unknown key "+s+note)
	}
	for _, k := range md.Undecoded() {
		report(k, "")
	}
	// The decoder also matches keys case-insensitively; the config does not.
	for _, k := range md.Keys() {
		if s := k.String(); len(k) <= 2 && !bad[s] && keyTypes[s] == nil {
			report(k, " (keys are case-sensitive)")
		}
	}
	if len(unknown) > 0 {
		return &decodeError{0, strings.Join(unknown, "; ")}
	}
	return nil
}

// keyTypes maps every "section" and "section.key" to its Go type.
var keyTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		sf := ct.Field(i)
		sec := sf.Tag.Get("toml")
		m[sec] = sf.Type
		for j := range sf.Type.NumField() {
			kf := sf.Type.Field(j)
			m[sec+"."+kf.Tag.Get("toml")] = kf.Type
		}
	}
	return m
}()

// Keys returns the name of every setting as "section.key", sorted.
func Keys() []string {
	var ks []string
	for k := range keyTypes {
		if strings.Contains(k, ".") {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

var (
	durationType   = reflect.TypeFor[Duration]()
	stringListType = reflect.TypeFor[StringList]()
)

// setFragment turns "section.key=value" into a one-key TOML document.
func setFragment(set string) (string, error) {
	k, v, ok := strings.Cut(set, "=")
	k = strings.TrimSpace(k)
	sec, key, dot := strings.Cut(k, ".")
	if !ok || !dot || !isBareKey(sec) || !isBareKey(key) {
		return "", errors.New("want section.key=value")
	}
	if !utf8.ValidString(v) {
		return "", errors.New("value is not valid UTF-8")
	}
	typ := keyTypes[k] // nil for an unknown key, which decode reports

	parsed, isTOML := parseValue(sec, key, v)
	_, isStr := parsed.(string)
	_, isList := parsed.([]any)
	lit := v
	switch {
	case typ == stringListType:
		if !isStr && !isList {
			var items []string
			for s := range strings.SplitSeq(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					items = append(items, tomlQuote(s))
				}
			}
			lit = "[" + strings.Join(items, ", ") + "]"
		}
	case typ != nil && (typ.Kind() == reflect.String || typ == durationType):
		if !isStr {
			lit = tomlQuote(v)
		}
	case !isTOML:
		lit = tomlQuote(v)
	}
	return fmt.Sprintf("[%s]\n%s = %s\n", sec, key, lit), nil
}

// parseValue reports whether v on its own is a TOML value, and which.
func parseValue(sec, key, v string) (any, bool) {
	var m map[string]any
	if _, err := toml.Decode(fmt.Sprintf("[%s]\n%s = %s\n", sec, key, v), &m); err != nil || len(m) != 1 {
		return nil, false
	}
	t, ok := m[sec].(map[string]any)
	if !ok || len(t) != 1 {
		return nil, false // v smuggled in more keys
	}
	val, ok := t[key]
	return val, ok
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// tomlQuote returns s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04X", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
