import { defaultConfig, type DaemonConfig } from '../../../src/daemon/config';
import { checkApiExposure, httpExposureWarning } from '../../../src/daemon/exposure';

/** What flotillad refuses to expose, for fleet's HTTP API (the gRPC API: api-access.test.ts). */
const cfg = (over: Partial<DaemonConfig>): DaemonConfig => ({
  ...defaultConfig(),
  grpc_listen: ['127.0.0.1:7070'],
  ...over,
});
const MTLS = { grpc_tls_cert: 'd.pem', grpc_tls_key: 'd.key', grpc_tls_ca: 'ca.pem' };

describe("checkApiExposure: fleet's HTTP API", () => {
  it('serves a non-loopback address only with client certificates (HTTPS, mTLS)', () => {
    expect(checkApiExposure(cfg({ fleet_api_listen: ['0.0.0.0:8080'], ...MTLS }))).toEqual([]);
    expect(() =>
      checkApiExposure(cfg({ fleet_api_listen: ['0.0.0.0:8080'], ...MTLS, grpc_tls_ca: '' })),
    ).toThrow(
      "refusing to serve fleet's HTTP API on 0.0.0.0:8080 with TLS but without client certificates",
    );
    expect(() => checkApiExposure(cfg({ fleet_api_listen: ['10.0.0.5:8080'] }))).toThrow(
      "refusing to serve fleet's HTTP API in plaintext and without authentication on 10.0.0.5:8080",
    );
  });

  it('loopback and unix sockets need nothing; grpc_insecure serves anything, with a warning', () => {
    expect(
      checkApiExposure(cfg({ fleet_api_listen: ['127.0.0.1:8080', 'unix:///run/fleet.sock'] })),
    ).toEqual([]);
    expect(
      checkApiExposure(cfg({ fleet_api_listen: ['0.0.0.0:8080'], grpc_insecure: true })),
    ).toEqual([
      "INSECURE (grpc_insecure=true): serving fleet's HTTP API in plaintext and without authentication on 0.0.0.0:8080",
    ]);
  });
});

describe('httpExposureWarning', () => {
  it('warns of /metrics and the visualizer on a non-loopback address, not on loopback or off', () => {
    expect(httpExposureWarning(cfg({ http_listen: '0.0.0.0:7071' }))).toContain(
      'http_listen 0.0.0.0:7071 serves /metrics and the visualizer',
    );
    expect(httpExposureWarning(cfg({ http_listen: '[::]:7071' }))).toContain(
      'without authentication',
    );
    expect(httpExposureWarning(cfg({ http_listen: '127.0.0.1:7071' }))).toBeUndefined();
    expect(httpExposureWarning(cfg({ http_listen: '[::1]:7071' }))).toBeUndefined();
    expect(httpExposureWarning(cfg({ http_listen: '' }))).toBeUndefined();
  });
});
