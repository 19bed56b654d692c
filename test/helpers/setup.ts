// Loaded by mocha before every suite: unhandled rejections fail the run instead of
// being printed and forgotten.
process.on('unhandledRejection', (reason) => {
  console.error('unhandled rejection in a test:', reason);
  throw reason;
});
