package config

import "strconv"

// trackFile reads a track_file (or vrrp_track_file) block. Where keepalived
// 2.2.7 reports a problem and carries on ignoring something, xlb warns and
// ignores the same thing; where it reports a value it cannot use, xlb
// gives an error.
func (ps *parser) trackFile(b *node) {
	if b.kw == "vrrp_track_file" {
		ps.p.warnf(b.pos, b.kw, "deprecated, use track_file:")
	}
	name, ok := ps.blockName(b)
	if !ok {
		return
	}
	tf := TrackFile{Name: name, Weight: 1, Pos: b.pos}
	for _, n := range b.children {
		switch n.kw {
		case "file":
			s, ok := ps.stringArg(n)
			switch {
			case !ok:
			case tf.Path != "":
				ps.p.warnf(n.pos, s, "(%s) file already set, ignoring:", name)
			case s == "":
				ps.p.warnf(n.pos, n.kw, "(%s) empty file name ignored:", name)
			default:
				tf.Path = s
			}
		case "weight":
			if !ps.args(n, 1, 2) {
				continue
			}
			// keepalived takes a weight only while it is still the
			// default.
			if tf.Weight != 1 {
				ps.p.warnf(n.pos, n.args[0], "(%s) weight already set, ignoring:", name)
				continue
			}
			if w, ok := ps.intArg(n, 0, -254, 254); ok {
				tf.Weight = int(w)
			}
			if len(n.args) == 2 {
				if n.args[1] != "reverse" {
					ps.p.errorf(n.pos, n.args[1], "track_file weight takes only reverse after the value, got")
					continue
				}
				tf.Reverse = true
			}
		case "init_file":
			ps.initFile(n, &tf)
		default:
			ps.unknown(n, ctxTrackFile)
		}
	}
	if ps.cfg.TrackFile(name) != nil {
		ps.p.errorf(b.pos, name, "track_file defined twice:")
		return
	}
	if tf.Path == "" {
		ps.p.warnf(b.pos, name, "no file set, removing track_file")
		return
	}
	ps.cfg.TrackFiles = append(ps.cfg.TrackFiles, tf)
}

// initFile reads "init_file [VALUE] [overwrite]". Each init_file line
// starts afresh, as in keepalived.
func (ps *parser) initFile(n *node, tf *TrackFile) {
	if !ps.leaf(n) {
		return
	}
	tf.InitFile, tf.InitValue, tf.Overwrite = true, 0, false
	for _, a := range n.args {
		switch {
		case a == "overwrite":
			tf.Overwrite = true
		case a != "" && (a[0] == '-' || isDigits(a[:1])):
			// keepalived only warns about values it cannot read, or
			// outside -254..254, but "keepalived -t" fails on them.
			v, err := strconv.ParseInt(a, 10, 64)
			if err != nil || v < -254 || v > 254 {
				ps.p.errorf(n.pos, a, "init_file value must be an integer in [-254, 254], got")
				continue
			}
			tf.InitValue = v
		default:
			ps.p.errorf(n.pos, a, "init_file takes a value and overwrite, got")
		}
	}
}

// trackFileEntries reads the track_file block of a vrrp_instance or
// vrrp_sync_group.
func (ps *parser) trackFileEntries(b *node) []trackDraft {
	ts := ps.trackBlock(b, 254)
	for i := range ts {
		ts[i].before = len(ps.cfg.TrackFiles)
	}
	return ts
}

// resolveFiles turns track_file entries into TrackFileRefs, taking the
// weight, and separately the reverse flag, from the track_file block where
// the entry has none. keepalived looks the block up when it reads the
// entry, so a block defined further down is not found.
func (ps *parser) resolveFiles(owner string, ts []trackDraft) []TrackFileRef {
	var found []trackDraft
	for _, t := range ts {
		if findTrackFile(ps.cfg.TrackFiles[:t.before], t.name) == nil {
			if ps.cfg.TrackFile(t.name) != nil {
				ps.p.warnf(t.pos, t.name, "(%s) track_file must be defined before it is tracked; ignoring", owner)
			} else {
				ps.p.warnf(t.pos, t.name, "(%s) track_file not found, ignoring:", owner)
			}
			continue
		}
		found = append(found, t)
	}
	var out []TrackFileRef
	for _, t := range ps.dedupTracks(owner, "track_file", found) {
		f := ps.cfg.TrackFile(t.name)
		r := TrackFileRef{Name: t.name, Weight: f.Weight, Reverse: f.Reverse}
		if t.weightSet {
			r.Weight = t.weight
		}
		if t.reverseSet {
			r.Reverse = t.reverse
		}
		out = append(out, r)
	}
	return out
}

func findTrackFile(fs []TrackFile, name string) *TrackFile {
	for i := range fs {
		if fs[i].Name == name {
			return &fs[i]
		}
	}
	return nil
}

// unweightFiles applies keepalived's rule to the track_file entries of an
// instance whose priority must not move (a sync group member without
// sync_group_tracking_weight, an address owner): weight 1, the default,
// becomes 0, and an entry with any other weight is dropped. Reverse stays:
// at weight 0 it says which values are failures. zeroed reports a weight 1
// set to 0.
func unweightFiles(ts []TrackFileRef, drop func(TrackFileRef)) (out []TrackFileRef, zeroed bool) {
	for _, t := range ts {
		switch t.Weight {
		case 0:
		case 1:
			t.Weight, zeroed = 0, true
		default:
			drop(t)
			continue
		}
		out = append(out, t)
	}
	return out, zeroed
}
