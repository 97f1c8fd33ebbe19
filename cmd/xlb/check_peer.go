package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/xlbproject/xlb/pkg/config"
	"github.com/xlbproject/xlb/pkg/election"
)

// peerCheck is `xlb check --peer FILE...`: the VRRP elections across this
// director's file and its peers' (pkg/election).
type peerCheck struct {
	files []string
}

// peerFlags adds --peer to xlb check's flags.
func peerFlags(fs *pflag.FlagSet) *peerCheck {
	p := &peerCheck{}
	fs.StringArrayVar(&p.files, "peer", nil,
		"another director's keepalived.conf, FILE or FILE@CONFIG_ID (repeatable): check the VRRP elections of this file and the peers' in every combination of tracker failures, one line per finding; exit 1 when a combination leaves no MASTER while a director could be one, two MASTERs, or a failed MASTER keeping the VIP")
	return p
}

// splitPeer reads FILE@CONFIG_ID: a shared keepalived.conf with "@host"
// lines is each director's file under its own config id.
func splitPeer(arg string) (file, id string) {
	slash := strings.LastIndexByte(arg, '/')
	if at := strings.LastIndexByte(arg, '@'); at > slash {
		return arg[:at], arg[at+1:]
	}
	return arg, ""
}

// run checks the elections when peers were given; self is the file xlb
// check loaded as cfg (under config id selfID). The peers' files are read
// as keepalived.conf only: their scripts live on their own machines, so
// this one's file system has no say (as it has for self, through the
// security check).
func (p *peerCheck) run(e env, self, selfID string, cfg *config.Config) int {
	if len(p.files) == 0 {
		return 0
	}
	ds := []election.Director{{Name: self, Config: cfg}}
	selfInfo, _ := os.Stat(self)
	if selfID == "" {
		selfID = config.DefaultConfigID()
	}
	bad := false
	for _, arg := range p.files {
		f, id := splitPeer(arg)
		if id == "" {
			id = config.DefaultConfigID()
		}
		if fi, err := os.Stat(f); err == nil && selfInfo != nil && os.SameFile(fi, selfInfo) {
			if id == selfID {
				fmt.Fprintf(e.stderr, "xlb check: --peer %s is the file being checked (a shared file needs each director's config id: --peer FILE@ID)\n", arg)
				return 2
			}
			ds[0].Name = self + "@" + selfID
		}
		c, err := config.ParseWith(f, config.Options{ConfigID: id})
		if err != nil {
			printErrors(e, err)
			bad = true
			continue
		}
		for _, w := range c.Warnings {
			fmt.Fprintf(e.stderr, "warning: %s\n", w.String())
		}
		name := f
		if _, given := splitPeer(arg); given != "" {
			name = arg
		}
		ds = append(ds, election.Director{Name: name, Config: c})
	}
	if bad {
		return 1
	}
	rep := election.Check(ds)
	for _, f := range rep.Findings {
		fmt.Fprintln(e.stdout, f.String())
	}
	fmt.Fprintln(e.stdout, rep.Summary())
	if rep.Failed() {
		return 1
	}
	return 0
}
