package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"sspemu/certs"
)

func newCheckConfigCmd(stdout io.Writer) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "check-config",
		Short: "Validate the configuration and registry; print every problem, exit 1 on any",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(viper.New(), file, nil)
			if !unusable(err) {
				// The dev PKI is made on first start: until then its files
				// are not there to read, but every file the user named is.
				var pending func(string) bool
				if _, statErr := os.Stat(filepath.Join(cfg.PKIDir(), certs.CAFile)); statErr != nil {
					prefix := filepath.Clean(cfg.PKIDir()) + string(filepath.Separator)
					pending = func(p string) bool { return strings.HasPrefix(filepath.Clean(p), prefix) }
				}
				err = errors.Join(err, cfg.validate(), cfg.SSP.Files(pending))
			}
			if err == nil {
				fmt.Fprintln(stdout, "configuration OK")
				return nil
			}
			return reportProblems(stdout, err)
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file merged over the embedded default")
	return cmd
}

// reportProblems prints every problem in err, one a line, and their count;
// the command then exits 1 without printing err again.
func reportProblems(w io.Writer, err error) error {
	problems := flatten(err)
	for _, p := range problems {
		fmt.Fprintln(w, "problem:", p)
	}
	fmt.Fprintf(w, "%d problem(s)\n", len(problems))
	return errReported
}

// flatten lists the leaves of joined errors, one problem each.
func flatten(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			sub := flatten(e)
			out = append(out, sub...)
		}
		return out
	}
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return []string{fmt.Sprintf("%q", err.Error())}
	}
	return out
}
