// A certified OpenID provider (npm oidc-provider) on loopback, standing in
// for ProConnect in the tests: authorisation code flow with PKCE, one
// confidential client (client_secret_post), and its development login page,
// where the login typed is the account and its e-mail address.
//
//   node provider.mjs PORT REDIRECT_URI
import Provider from "oidc-provider";

const [port, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "decompte",
      client_secret: "secret-de-test-du-fournisseur",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  pkce: { required: () => true },
  scopes: ["openid", "email", "given_name", "usual_name"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    given_name: ["given_name"],
    usual_name: ["usual_name"],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: id,
          email_verified: true,
          given_name: "Camille",
          usual_name: "Agent",
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["decompte-test-cookie-key"] },
  ttl: { Session: 600, Interaction: 600, Grant: 600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
});

provider.listen(Number(port), "127.0.0.1", () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
