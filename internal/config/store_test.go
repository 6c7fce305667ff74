package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateStore(t *testing.T) {
	redis := func(c *Config) { c.Store.Backend, c.Store.RedisAddrs = StoreRedis, StringList{"127.0.0.1:6379"} }
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string // "" : valid
	}{
		{"bolt default", func(c *Config) {}, ""},
		{"redis", redis, ""},
		{"backend", func(c *Config) { c.Store.Backend = "postgres" }, `store.backend: "postgres": must be bolt or redis`},
		{"no addrs", func(c *Config) { c.Store.Backend = StoreRedis }, "store.redis_addrs: must list at least one"},
		{"addr no port", func(c *Config) { redis(c); c.Store.RedisAddrs = StringList{"redis.example"} }, `store.redis_addrs: "redis.example" is not host:port`},
		{"db negative", func(c *Config) { redis(c); c.Store.RedisDB = -1 }, "store.redis_db: must be >= 0"},
		{"db in cluster", func(c *Config) { redis(c); c.Store.RedisAddrs = StringList{"a:1", "b:1"}; c.Store.RedisDB = 2 }, "store.redis_db: Redis Cluster"},
		{"db with sentinel", func(c *Config) {
			redis(c)
			c.Store.RedisAddrs, c.Store.RedisMaster, c.Store.RedisDB = StringList{"a:1", "b:1"}, "mymaster", 2
		}, ""},
		{"prefix braces", func(c *Config) { c.Store.RedisPrefix = "{x}" }, "store.redis_prefix: "},
		{"prefix empty", func(c *Config) { c.Store.RedisPrefix = "" }, "store.redis_prefix: "},
		{"timeout", func(c *Config) { c.Store.RedisTimeout = Duration{} }, "store.redis_timeout: must be positive"},
		{"wait replicas negative", func(c *Config) { c.Store.RedisWaitReplicas = -1 }, "store.redis_wait_replicas: must be >= 0"},
		{"wait replicas", func(c *Config) { redis(c); c.Store.RedisWaitReplicas = 1 }, ""},
		{"wait timeout too long", func(c *Config) {
			redis(c)
			c.Store.RedisWaitReplicas, c.Store.RedisWaitTimeout = 1, c.Store.RedisTimeout
		}, "store.redis_wait_timeout: 2s: must be positive and shorter than store.redis_timeout"},
		{"wait timeout unused", func(c *Config) { c.Store.RedisTimeout = Duration{500 * time.Millisecond} }, ""},
		{"unreachable", func(c *Config) { c.Store.Unreachable = "drop" }, `store.unreachable: "drop": must be tempfail or open`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRedisSetAndPassword(t *testing.T) {
	c := Default()
	for _, s := range []string{"store.backend=redis", `store.redis_addrs=["127.0.0.1:6380", "127.0.0.1:6381"]`, "store.unreachable=open"} {
		if err := c.Apply(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Validate(); err != nil || len(c.Store.RedisAddrs) != 2 || c.Store.Unreachable != StoreOpen {
		t.Fatalf("after -set: %+v, %v", c.Store, err)
	}
	if pw, err := c.RedisPassword(); err != nil || pw != "" {
		t.Fatalf("no password file: %q, %v", pw, err)
	}
	f := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(f, []byte("s3cret\r\nignored\n"), 0o600)
	c.Store.RedisPasswordFile = f
	if pw, err := c.RedisPassword(); err != nil || pw != "s3cret" {
		t.Fatalf("password = %q, %v", pw, err)
	}
	c.Store.RedisPasswordFile = f + ".missing"
	if _, err := c.RedisPassword(); err == nil || !strings.HasPrefix(err.Error(), "store.redis_password_file: ") {
		t.Fatalf("missing file: %v", err)
	}
}
