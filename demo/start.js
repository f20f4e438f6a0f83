// `npm start` will open the prompt playground: a page that streams from a mock model server,
// with the collector and trace viewer beside it. Until that lands, say so and exit cleanly.
console.log(`edgetrace: the demo playground is not built yet.

It will arrive with the demo work: a local prompt playground whose traces (the click, the
request, the server span and the streamed answer) show up in one waterfall.

What works today:
  npm test        type checks, unit tests, the library build and the browser tests
  npm run bench   span cost against OpenTelemetry, and bundle sizes (see BENCHMARKS.md)
`);
