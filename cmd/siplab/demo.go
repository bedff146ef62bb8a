package main

import (
	"context"
	"fmt"
)

func demo(ctx context.Context, args []string) error {
	return fmt.Errorf("%w: demo is not built yet", errUsage)
}
