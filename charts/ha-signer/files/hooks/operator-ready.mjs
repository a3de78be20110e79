// `helm test`: the operator answers /readyz through its Service (retried until TIMEOUT_SECONDS).
const url = process.env.OPERATOR_READYZ_URL;
const deadline = Date.now() + Number(process.env.TIMEOUT_SECONDS ?? '60') * 1000;
for (;;) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const body = (await res.text()).trim();
    if (res.ok) {
      console.log(`operator ready at ${url}: ${body}`);
      process.exit(0);
    }
    console.error(`${url}: HTTP ${res.status}: ${body}`);
  } catch (error) {
    console.error(`${url}: ${error.cause?.code ?? error.message}`);
  }
  if (Date.now() > deadline) {
    console.error(`operator not ready within ${process.env.TIMEOUT_SECONDS}s`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 2000));
}
