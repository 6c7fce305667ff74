package config

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// validateStore checks the [store] backend keys.
func (c *Config) validateStore(bad func(key, format string, args ...any)) {
	s := &c.Store
	switch s.Backend {
	case StoreBolt:
	case StoreRedis:
		if len(s.RedisAddrs) == 0 {
			bad("store.redis_addrs", "must list at least one host:port when store.backend is %q", StoreRedis)
		}
		for _, a := range s.RedisAddrs {
			if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
				bad("store.redis_addrs", "%q is not host:port", a)
			}
		}
	default:
		bad("store.backend", "%q: must be %s or %s", s.Backend, StoreBolt, StoreRedis)
	}
	if s.RedisDB < 0 {
		bad("store.redis_db", "must be >= 0")
	}
	if s.RedisDB != 0 && s.RedisMaster == "" && len(s.RedisAddrs) > 1 {
		bad("store.redis_db", "Redis Cluster has only database 0")
	}
	if s.RedisPrefix == "" || strings.ContainsAny(s.RedisPrefix, "{} \t\r\n") {
		bad("store.redis_prefix", "%q: must be non-empty, without braces or spaces", s.RedisPrefix)
	}
	if s.RedisTimeout.Duration <= 0 {
		bad("store.redis_timeout", "must be positive")
	}
	if s.RedisWaitReplicas < 0 {
		bad("store.redis_wait_replicas", "must be >= 0")
	}
	if s.RedisWaitReplicas > 0 && (s.RedisWaitTimeout.Duration <= 0 || s.RedisWaitTimeout.Duration >= s.RedisTimeout.Duration) {
		bad("store.redis_wait_timeout", "%v: must be positive and shorter than store.redis_timeout (%v): WAIT blocks the connection",
			s.RedisWaitTimeout.Duration, s.RedisTimeout.Duration)
	}
	switch s.Unreachable {
	case StoreTempfail, StoreOpen:
	default:
		bad("store.unreachable", "%q: must be %s or %s", s.Unreachable, StoreTempfail, StoreOpen)
	}
}

// RedisPassword reads store.redis_password_file ("" when unset): its
// first line, so the secret stays out of the config file and ps.
func (c *Config) RedisPassword() (string, error) {
	if c.Store.RedisPasswordFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.Store.RedisPasswordFile)
	if err != nil {
		return "", fmt.Errorf("store.redis_password_file: %w", err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(pw, "\r"), nil
}
