package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"sspemu/report"
)

// asidPattern is an ASID as Spine issues them.
var asidPattern = regexp.MustCompile(`^[0-9]{12}$`)

func newReportCmd(stdout io.Writer) *cobra.Command {
	var auditDir, from, since, until, format, out, file string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Evidence for NHS consumer assurance from the audit: a result per consumer test ID",
		Long: "Verify the audit's hash chains, select one consumer's records (--from ASID) in a time range\n" +
			"and give each GP Connect " + report.SpecVersion + " consumer test ID (Spine Integration, Foundations,\n" +
			"Appointments) a result: met, not met or not exercised, with the trace IDs and times of the calls\n" +
			"that show it and what was checked. A tampered audit is refused, naming the broken record.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(report.Formats, format) {
				return fmt.Errorf("--format %q: want one of %s", format, strings.Join(report.Formats, ", "))
			}
			if from != "" && !asidPattern.MatchString(from) {
				return fmt.Errorf("--from %q: an ASID is exactly 12 digits", from)
			}
			opt := report.Options{AuditDir: auditDir, From: from, Version: version(), Now: time.Now()}
			var err error
			if opt.Since, err = parseWhen("--since", since, false); err != nil {
				return err
			}
			if opt.Until, err = parseWhen("--until", until, true); err != nil {
				return err
			}
			if !opt.Until.IsZero() && opt.Until.Before(opt.Since) {
				return fmt.Errorf("--until %s is before --since %s", until, since)
			}
			if opt.ConfigHash, opt.ConfigSource, err = configHash(file); err != nil {
				return err
			}
			if opt.AuditDir == "" {
				cfg, err := loadConfig(viper.New(), file, nil)
				if unusable(err) {
					return err
				}
				opt.AuditDir = cfg.AuditDir()
			}
			if fi, err := os.Stat(opt.AuditDir); err != nil || !fi.IsDir() {
				return fmt.Errorf("--audit %s: not a directory holding the audit (audit-*.jsonl)", opt.AuditDir)
			}
			rep, err := report.Build(opt)
			if err != nil {
				return err
			}
			var buf bytes.Buffer
			if err := report.Write(&buf, rep, format); err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = stdout.Write(buf.Bytes())
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				return fmt.Errorf("--out %s: %w", out, err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d met, %d not met, %d not exercised (ASID %s, %d records)\n",
				out, rep.Summary.Met, rep.Summary.NotMet, rep.Summary.NotExercised, rep.Consumer, rep.Range.Records)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&auditDir, "audit", "", "audit directory (default: the configuration's audit directory)")
	f.StringVar(&from, "from", "", "the consumer's ASID (Ssp-From); may be left out when the range holds one consumer")
	f.StringVar(&since, "since", "", "first time covered: RFC 3339 (2025-03-01T09:00:00Z) or a date (2025-03-01, UTC)")
	f.StringVar(&until, "until", "", "last time covered: RFC 3339 or a date (the whole day, UTC)")
	f.StringVar(&format, "format", "html", "output format: html, json or junit")
	f.StringVar(&out, "out", "", "file to write (default: standard output)")
	f.StringVarP(&file, "config", "c", "", "the configuration file the SSP ran with, to name it by its SHA-256")
	return cmd
}

// parseWhen reads a --since or --until value; a date alone means its
// start, or for end its last instant.
func parseWhen(flag, v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		if end {
			t = t.Add(24*time.Hour - time.Nanosecond)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: want RFC 3339 (2025-03-01T09:00:00Z) or a date (2025-03-01)", flag, v)
}

// configHash names the configuration: the SHA-256 of the file given, else
// of the embedded default the SSP runs with when given none. The audit
// itself does not record which configuration was in force.
func configHash(file string) (sum, source string, err error) {
	data, source := defaultConfig, "embedded default"
	if file != "" {
		if data, err = os.ReadFile(file); err != nil {
			return "", "", fmt.Errorf("--config %s cannot be read: %w", file, err)
		}
		source = file
	}
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:]), source, nil
}
