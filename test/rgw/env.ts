// Where the rgw tier's radosgw is: scripts/rgw.sh exports PAGEVAULT_RGW_*.
const VARS = ['PAGEVAULT_RGW_ENDPOINT', 'PAGEVAULT_RGW_ACCESS_KEY', 'PAGEVAULT_RGW_SECRET_KEY'] as const;

export function rgw(): { endpoint: string; accessKeyId: string; secretAccessKey: string } {
  const missing = VARS.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(`the rgw tier needs ${missing.join(', ')}: run it with \`npm run test:rgw\`, or export the env file that \`scripts/rgw.sh up\` writes`);
  }
  return {
    endpoint: process.env.PAGEVAULT_RGW_ENDPOINT!,
    accessKeyId: process.env.PAGEVAULT_RGW_ACCESS_KEY!,
    secretAccessKey: process.env.PAGEVAULT_RGW_SECRET_KEY!,
  };
}
