package proxy

import "errors"

var (
	// ErrNoEndpoint is New called without a bound endpoint to serve.
	ErrNoEndpoint = errors.New("proxy: at least one endpoint is required")
	// ErrNoLocation is a Config without a location service.
	ErrNoLocation = errors.New("proxy: a location service is required")
	// ErrBadRegistrar is a registrar address that is not "ip:port".
	ErrBadRegistrar = errors.New("proxy: registrar must be ip:port")
	// ErrUnknownSetting is a live toggle name the proxy does not have.
	ErrUnknownSetting = errors.New("proxy: unknown setting")
	// ErrBadSettingValue is a value a toggle does not accept.
	ErrBadSettingValue = errors.New("proxy: bad setting value")
	// ErrBadRoute is a static route (Config.Routes, -route) that is
	// malformed or ambiguous.
	ErrBadRoute = errors.New("proxy: bad static route")
)
