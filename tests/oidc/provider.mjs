// A real OpenID Connect provider (the `oidc-provider` package) for
// tests/tests/oidc.rs, on loopback only. Environment:
//   OIDC_PROVIDER_MODULE  path of node_modules/oidc-provider/lib/index.js
//   PORT                  port on 127.0.0.1 (the issuer is http://127.0.0.1:PORT)
//   REDIRECT_URI          the collector's callback, registered for client `pantau`
//   CLIENT_SECRET         client `pantau`'s secret
//   ISSUER_HOST, DEFAULT_USER  optional, see below
// Users sign in without a form: the authorization request's `login_hint`
// names the user (the test adds it; else DEFAULT_USER), and consent is given by the grant
// made in loadExistingGrant. Prints `ready` when listening.
import http from 'node:http';
import crypto from 'node:crypto';

const { default: Provider } = await import(process.env.OIDC_PROVIDER_MODULE);

const port = Number(process.env.PORT);
// ISSUER_HOST: `localhost` makes the provider another site than the
// collector on 127.0.0.1, as in a real deployment (cookies' SameSite).
const issuer = `http://${process.env.ISSUER_HOST || '127.0.0.1'}:${port}`;

const USERS = {
  ani: {
    sub: 'sub-ani-0001',
    preferred_username: 'ani',
    email: 'ani@diskominfo.example.go.id',
    email_verified: true,
    groups: ['pantau-admin', 'pegawai'],
  },
  budi: {
    sub: 'sub-budi-0002',
    preferred_username: 'budi',
    email: 'budi@dinkes.example.go.id',
    email_verified: true,
    groups: ['pantau-opd-dinkes', 'pegawai'],
  },
  citra: {
    sub: 'sub-citra-0003',
    preferred_username: 'citra',
    email: 'citra@example.go.id',
    email_verified: true,
    groups: ['pegawai'],
  },
  // A user whose preferred name is a local account's: must get another name.
  admin: {
    sub: 'sub-admin-0004',
    preferred_username: 'admin',
    email: 'admin@example.go.id',
    email_verified: false,
    groups: ['pantau-eval'],
  },
};

const signing = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const jwk = { ...signing.export({ format: 'jwk' }), kid: 'test-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'pantau',
      client_secret: process.env.CLIENT_SECRET,
      redirect_uris: [process.env.REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  scopes: ['openid', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  pkce: { required: () => true, methods: ['S256'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const u = Object.values(USERS).find((x) => x.sub === id);
    return u && { accountId: id, claims: async () => ({ ...u }) };
  },
  async loadExistingGrant(ctx) {
    const found = ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (found) return ctx.oidc.provider.Grant.find(found);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid profile email groups');
    await grant.save();
    return grant;
  },
});

const callback = provider.callback();
http
  .createServer(async (req, res) => {
    if (!req.url.startsWith('/interaction/')) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      const user = USERS[details.params.login_hint || process.env.DEFAULT_USER];
      if (details.prompt.name !== 'login' || !user) {
        res.statusCode = 400;
        return res.end(`no such test user or prompt: ${details.prompt.name}`);
      }
      await provider.interactionFinished(req, res, { login: { accountId: user.sub } });
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  })
  .listen(port, '127.0.0.1', () => console.log('ready'));
