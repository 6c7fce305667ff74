package config

import (
	"strings"
	"testing"
)

func TestFollowKeys(t *testing.T) {
	for _, tc := range []struct {
		sets []string
		want string // "" = valid
	}{
		{[]string{"follow.files=/var/log/mail.log,/var/log/rspamd.log", "follow.dry_run=true"}, ""},
		{[]string{"api.listen=127.0.0.1:8026", "api.token=0123456789abcdef"}, ""},
		{[]string{"api.listen=127.0.0.1:8026"}, "api.token: must be set"},
		{[]string{"api.listen=127.0.0.1:8026", "api.token=short"}, "api.token: must be set"},
		{[]string{"api.listen=nonsense", "api.token=0123456789abcdef"}, "api.listen: "},
		{[]string{"api.sample_every=10s", "api.samples=8640"}, ""},
		{[]string{"api.sample_every=500ms"}, "api.sample_every: must be at least 1s"},
		{[]string{"api.samples=1"}, "api.samples: must be from 2 to"},
		{[]string{"api.samples=100001"}, "api.samples: must be from 2 to"},
		{[]string{"feedback.black_ttl=0s"}, "feedback.black_ttl: must be > 0"},
		{[]string{"candidates.promote_networks=-1"}, "candidates.promote_networks: must be >= 0"},
		{[]string{"candidates.promote_days=0"}, "candidates.promote_days: must be >= 1"},
		{[]string{`follow.files=[""]`}, "follow.files: empty file name"},
	} {
		c, err := Load("", tc.sets)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.sets, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: got %v, want %q", tc.sets, err, tc.want)
		case tc.want == "" && c.FollowState() != c.Store.Path+".follow":
			t.Errorf("follow state %q", c.FollowState())
		}
	}
}
