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
			files := true
			if _, statErr := os.Stat(cfg.PKIDir()); statErr != nil && cfg.SSP.TLS.Cert == filepath.Join(cfg.PKIDir(), certs.SSPServerFile) {
				// The dev PKI is made on first start; nothing to read yet.
				files = false
			}
			err = errors.Join(err, cfg.validate(files))
			if err == nil {
				fmt.Fprintln(stdout, "configuration OK")
				return nil
			}
			problems := flatten(err)
			for _, p := range problems {
				fmt.Fprintln(stdout, "problem:", p)
			}
			fmt.Fprintf(stdout, "%d problem(s)\n", len(problems))
			return errReported
		},
	}
	cmd.Flags().StringVarP(&file, "config", "c", "", "configuration file merged over the embedded default")
	return cmd
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
