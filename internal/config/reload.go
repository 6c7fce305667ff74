package config

import (
	"fmt"
	"reflect"
	"slices"
)

// reloadable lists the keys a SIGHUP applies to a running daemon, for new
// sessions. Every other key needs a restart: listeners, the store, the
// background loops whose shape a key fixes. The list names what is safe
// rather than what is not, so a key added later needs a restart until
// someone makes it reloadable on purpose.
var reloadable = map[string]bool{
	"smtp.hostname":         true,
	"smtp.greet_wait":       true,
	"smtp.command_timeout":  true,
	"smtp.session_timeout":  true,
	"smtp.drain_timeout":    true,
	"smtp.data_timeout":     true,
	"smtp.max_sessions":     true,
	"smtp.max_errors":       true,
	"smtp.max_recipients":   true,
	"smtp.max_message_size": true,
	"smtp.tls_cert":         true,
	"smtp.tls_key":          true,
	"smtp.proxy_trusted":    true,
	"smtp.proxy_timeout":    true,

	"greylist.pass_delay":   true,
	"greylist.retry_window": true,
	"greylist.white_ttl":    true,
	"greylist.mode":         true,
	"greylist.spf":          true,
	"greylist.spf_timeout":  true,

	"lists.allow":      true,
	"lists.block":      true,
	"lists.drop":       true,
	"lists.spamd_conf": true,

	"log.level": true,

	"tarpit.stutter":          true,
	"tarpit.grey_stutter_for": true,
	"tarpit.reply_code":       true,
	"tarpit.blackhole":        true,
	"tarpit.max_sessions":     true,
	"tarpit.max_per_prefix":   true,
	"tarpit.pressure":         true,
	"tarpit.idle_timeout":     true,
	"tarpit.session_timeout":  true,
	"tarpit.max_data_size":    true,
	"tarpit.pregreet_ttl":     true,

	"traps.files":         true,
	"traps.domains":       true,
	"traps.black_ttl":     true,
	"traps.max_black_ttl": true,

	"dnsbl.sites":           true,
	"dnsbl.threshold":       true,
	"dnsbl.allow_threshold": true,
	"dnsbl.timeout":         true,
	"dnsbl.resolver":        true,
	"dnsbl.cache_size":      true,
	"dnsbl.health_every":    true,

	"bigsenders.enabled": true,
	"bigsenders.refresh": true,
	"bigsenders.disable": true,
	"bigsenders.add":     true,

	"policy.greylist_action":        true,
	"policy.greylist_text":          true,
	"policy.black_action":           true,
	"policy.x_greylist_header":      true,
	"policy.auto_whitelist_clients": true,
	"policy.whitelist_clients":      true,
	"policy.whitelist_recipients":   true,
}

// Reloadable reports whether key ("section.key") takes effect on SIGHUP.
func Reloadable(key string) bool { return reloadable[key] }

// Changed returns the keys whose values differ between a and b, sorted.
func Changed(a, b *Config) []string {
	var keys []string
	av, bv := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	ct := av.Type()
	for i := range ct.NumField() {
		sec := ct.Field(i).Tag.Get("toml")
		as, bs := av.Field(i), bv.Field(i)
		for j := range as.NumField() {
			if !equalValue(as.Field(j), bs.Field(j)) {
				keys = append(keys, sec+"."+as.Type().Field(j).Tag.Get("toml"))
			}
		}
	}
	slices.Sort(keys)
	return keys
}

// equalValue compares two settings; an empty list equals a missing one.
func equalValue(a, b reflect.Value) bool {
	if a.Kind() == reflect.Slice && a.Len() == 0 && b.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a.Interface(), b.Interface())
}

// Diff splits the keys changed from old to new into those a reload
// applies and those that need a restart.
func Diff(old, new *Config) (reload, restart []string) {
	for _, k := range Changed(old, new) {
		if Reloadable(k) {
			reload = append(reload, k)
		} else {
			restart = append(restart, k)
		}
	}
	return reload, restart
}

// Running returns next with every key that needs a restart set back to
// its value in cur: the configuration a reload puts in force while the
// process runs on. The result is validated again, as it mixes two files.
func Running(cur, next *Config) (*Config, error) {
	c := *next
	cv, ov := reflect.ValueOf(&c).Elem(), reflect.ValueOf(cur).Elem()
	ct := cv.Type()
	for i := range ct.NumField() {
		sec := ct.Field(i).Tag.Get("toml")
		for j := range cv.Field(i).NumField() {
			if !reloadable[sec+"."+cv.Field(i).Type().Field(j).Tag.Get("toml")] {
				cv.Field(i).Field(j).Set(ov.Field(i).Field(j))
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: with the keys that need a restart at their running values: %w", err)
	}
	return &c, nil
}
