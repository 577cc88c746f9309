"""The HTTP service on Ray Serve (`swiftavatar serve`): one application of three deployments
(face framing, the estimator with dynamic batching, the engine renderer) behind a FastAPI
ingress. The deployments are thin adapters over `swiftavatar.predictor`. Importing this
package does not import Ray."""
