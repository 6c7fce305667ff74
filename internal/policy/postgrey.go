package policy

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of the policy listener that are not config keys.
const (
	DefaultIdleTimeout = 10 * time.Minute
	DefaultMaxConns    = 10000
)

// postgreyFlags are postgrey 1.37's options (GetOptions in main()). The
// value says whether the flag takes a value: 1 always, 0 never, 2 optional
// (--auto-whitelist-clients[=N]).
var postgreyFlags = map[string]int{
	"inet": 1, "i": 1, "unix": 1, "u": 1, "dbdir": 1, "delay": 1, "max-age": 1, "retry-window": 1,
	"lookup-by-subnet": 0, "lookup-by-host": 0, "ipv4cidr": 1, "ipv6cidr": 1,
	"auto-whitelist-clients": 2, "whitelist-clients": 1, "whitelist-recipients": 1,
	"greylist-action": 1, "greylist-text": 1, "x-greylist-header": 1, "privacy": 0, "hostname": 1,
	// Accepted and ignored: greypit logs with log.*, runs in the
	// foreground under systemd and has no per-process user switch.
	"verbose": 0, "v": 0, "quiet": 0, "q": 0, "daemonize": 0, "d": 0, "user": 1, "group": 1,
	"pidfile": 1, "syslogfacility": 1, "syslog-facility": 1, "facility": 1, "socketmode": 1,
	"listen-queue-size": 1,
	// Refused: these change behaviour greypit does not have.
	"exim": 0, "noaction": 0, "no-action": 0, "n": 0,
}

// PostgreyDir is where postgrey's Debian package keeps its whitelists.
var PostgreyDir = "/etc/postgrey"

// SplitArgs separates postgrey's "--flag[=value]" arguments from
// greypit's own (-config, -set).
func SplitArgs(args []string) (own, pg []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			own = append(own, a)
			continue
		}
		name, _, hasVal := strings.Cut(a[2:], "=")
		n, ok := postgreyFlags[name]
		if !ok {
			own = append(own, a)
			continue
		}
		pg = append(pg, a)
		if n == 1 && !hasVal && i+1 < len(args) {
			i++
			pg = append(pg, args[i])
		}
	}
	return own, pg
}

var retryWindowRE = regexp.MustCompile(`(?i)^(\d+)(h?)$`)

// PostgreyFlags maps postgrey's flags onto greypit config overrides
// ("section.key=value", for config.Apply). When there is any flag,
// postgrey's defaults apply first (delay 300 s, max-age 35 days, retry
// window 2 days, auto-whitelist after 5, /etc/postgrey's whitelists), so
// the same command line behaves as it did under postgrey.
func PostgreyFlags(args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	sets := []string{
		"greylist.pass_delay=300s",
		"greylist.white_ttl=35d",
		"greylist.retry_window=48h",
		"greylist.prefix_v4=24",
		"greylist.prefix_v6=64",
		"policy.auto_whitelist_clients=5",
	}
	var clients, rcpts []string
	byHost := false
	v4, v6 := "", ""
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i][2:], "=")
		need := postgreyFlags[name]
		if need == 1 && !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("postgrey flag --%s needs a value", name)
			}
			i++
			val = args[i]
		}
		if need == 0 && hasVal {
			return nil, fmt.Errorf("postgrey flag --%s takes no value", name)
		}
		num := func() (int, error) {
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("postgrey flag --%s=%s: want a number", name, val)
			}
			return n, nil
		}
		switch name {
		case "inet", "i":
			if _, err := strconv.Atoi(val); err == nil {
				val = "127.0.0.1:" + val // postgrey binds localhost for a bare port
			}
			sets = append(sets, "policy.listen="+val)
		case "unix", "u":
			sets = append(sets, "policy.listen="+val)
		case "dbdir":
			sets = append(sets, "store.path="+strings.TrimRight(val, "/")+"/greypit.db")
		case "delay":
			n, err := num()
			if err != nil {
				return nil, err
			}
			sets = append(sets, fmt.Sprintf("greylist.pass_delay=%ds", n))
		case "max-age":
			n, err := num()
			if err != nil {
				return nil, err
			}
			sets = append(sets, fmt.Sprintf("greylist.white_ttl=%dd", n))
		case "retry-window":
			m := retryWindowRE.FindStringSubmatch(val)
			if m == nil {
				return nil, fmt.Errorf("postgrey flag --retry-window=%s: want a number of days, or of hours with 'h' (6h)", val)
			}
			if m[2] != "" {
				sets = append(sets, "greylist.retry_window="+m[1]+"h")
			} else {
				sets = append(sets, "greylist.retry_window="+m[1]+"d")
			}
		case "lookup-by-subnet":
		case "lookup-by-host":
			byHost = true
		case "ipv4cidr":
			v4 = val
		case "ipv6cidr":
			v6 = val
		case "auto-whitelist-clients":
			if val == "" {
				val = "5"
			}
			if _, err := num(); err != nil {
				return nil, err
			}
			sets = append(sets, "policy.auto_whitelist_clients="+val)
		case "whitelist-clients":
			clients = append(clients, val)
		case "whitelist-recipients":
			rcpts = append(rcpts, val)
		case "greylist-action":
			sets = append(sets, "policy.greylist_action="+val)
		case "greylist-text":
			sets = append(sets, "policy.greylist_text="+val)
		case "x-greylist-header":
			sets = append(sets, "policy.x_greylist_header="+val)
		case "privacy":
			sets = append(sets, "policy.privacy=true")
		case "hostname":
			sets = append(sets, "smtp.hostname="+val)
		case "exim", "noaction", "no-action", "n":
			return nil, fmt.Errorf("postgrey flag --%s is not supported", name)
		}
	}
	switch {
	case byHost:
		sets = append(sets, "greylist.prefix_v4=32", "greylist.prefix_v6=128")
	default:
		if v4 != "" {
			sets = append(sets, "greylist.prefix_v4="+v4)
		}
		if v6 != "" {
			sets = append(sets, "greylist.prefix_v6="+v6)
		}
	}
	if clients == nil {
		clients = existing(PostgreyDir + "/whitelist_clients")
	}
	if rcpts == nil {
		rcpts = existing(PostgreyDir + "/whitelist_recipients")
	}
	sets = append(sets, "policy.whitelist_clients="+tomlList(clients), "policy.whitelist_recipients="+tomlList(rcpts))
	return sets, nil
}

func existing(f string) []string {
	if _, err := os.Stat(f); err == nil {
		return []string{f}
	}
	return nil
}

func tomlList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
