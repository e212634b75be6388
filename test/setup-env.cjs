// The CLI runs that tests make use the wasm backend even where @tensorflow/tfjs-node is built
// (scripts/tfjs-node-offline.sh): in jest's VM context typed arrays come from another realm than
// the native binding's, which refuses them ("Unsupported TypedArray subtype"). A test that wants
// another backend says so (--backend, or initBackend).
process.env.R2N2_BACKEND ??= 'wasm';
