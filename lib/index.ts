/**
 * paddle-image-feature: load and run PaddlePaddle image-feature models in Node.js, with
 * its own native engine over oneDNN.
 */
export {
  loadPredictor,
  Predictor,
  validatePredictorOptions,
  MAX_CPU_THREADS,
  GRAPH_PASSES,
  type Precision,
  type PredictorOptions,
  type ResolvedPredictorOptions,
  type RunMode,
  type RunInputs,
  type EngineInfo,
} from './predictor.js';
export {
  quantizeModel,
  readQuantSpec,
  writeQuantizedModel,
  validateQuantizeOptions,
  QUANT_FILE,
  type QuantizeOptions,
  type QuantSpec,
  type QuantReport,
  type QuantConv,
} from './quantize.js';
export {
  chooseBackend,
  engineNote,
  validateHpiConfig,
  CPU_PRIORITY,
  HPI_BACKENDS,
  type BackendChoice,
  type EngineBackend,
  type HpiBackend,
  type HpiConfig,
  type ResolvedHpiConfig,
} from './hpi-config.js';
export {
  downloadOfficialModel,
  extractTar,
  DEFAULT_MODEL_BASE_URL,
  type DownloadOptions,
  type DownloadResult,
} from './download.js';
export {
  createModel,
  FeatureModel,
  OFFICIAL_MODELS,
  preprocessFromConfig,
  targetSize,
  normalizeRows,
  type ModelPreprocess,
  type CreateModelOptions,
  type PredictOptions,
} from './image-feature.js';
export {
  resolveInputs,
  decodeItem,
  IMAGE_SUFFIXES,
  type PixelInput,
  type ImageInput,
  type PredictInput,
  type InputItem,
  type ResolveOptions,
} from './input.js';
export {
  preprocessImage,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type RawImage,
  type PreprocessSpec,
  type Preprocessed,
} from './preprocess.js';
export {
  FeatureResult,
  type FeatureResultJson,
  type PrintOptions,
  type ResultJsonOptions,
} from './result.js';
export { type Tensor, type TensorData, type TensorInput, type TensorDType } from './tensor.js';
export { inspectModel, formatModelInfo, inspectionJson, type FormatOptions } from './inspect.js';
export {
  dumpModel,
  saveModel,
  type DType,
  type ModelInfo,
  type ReadOptions,
  type SaveOptions,
  type TensorInfo,
} from './model.js';
export type { LoadLimits } from './limits.js';
export { exportOnnx, type ExportOnnxOptions } from './export.js';
export {
  buildModel,
  BUILDABLE_MODELS,
  type BuildableModel,
  type BuildModelOptions,
} from './builder.js';
export {
  resolveModelDir,
  loadInferenceConfig,
  parseInferenceConfig,
  INFERENCE_CONFIG_FILE,
  PROGRAM_FILES,
  type InferenceConfig,
  type ModelFormat,
  type ResolvedModelDir,
  type TransformOp,
} from './modeldir.js';
export {
  PifError,
  ModelFormatError,
  ModelParamsError,
  ModelNotFoundError,
  ModelLimitError,
  ModelUnsupportedError,
  ModelConfigError,
  PifIoError,
  InputNotFoundError,
  InputDecodeError,
  DownloadError,
  InvalidArgumentError,
  UnsupportedError,
  ClosedError,
  NativeLoadError,
  InternalError,
  InputError,
  RunError,
  DatasetCheckError,
  DatasetConvertError,
  DatasetSplitError,
  ConfigError,
  IndexError,
  CancelledError,
  QuantizationError,
  type PaddlexErrorType,
  type PifErrorCode,
  type PifErrorDetails,
} from './errors.js';
export {
  evaluateFeatures,
  evaluateFeaturesWithStats,
  evalLogLine,
  roundMetric,
  type EvaluateFeaturesInput,
  type EvaluateFeaturesOptions,
  type RetrievalMetrics,
} from './evaluate.js';
export { searchTopK, type SearchTopKOptions, type SearchTopKResult } from './search.js';
export {
  evaluateDataset,
  type EvaluateDatasetOptions,
  type EvaluateDatasetResult,
} from './evaluate-dataset.js';
export {
  train,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  type TrainTier,
} from './train/train.js';
export { type EpochPoint } from './train/curves.js';
export { checkDataset, type CheckDatasetResult } from './dataset/check.js';
export { convertLabelMe } from './dataset/convert.js';
export { splitDataset } from './dataset/split.js';
export { findDatasetRoot, readDatasetList } from './dataset/lists.js';
export {
  applyOverride,
  loadModuleConfig,
  parseOverrideValue,
  CONFIG_DIR,
  type ConfigMap,
  type ConfigValue,
} from './config.js';
export { runMode, SUPPORTED_MODES, type Mode } from './paddlex-modes.js';
export {
  createIndex,
  loadIndex,
  readGalleryList,
  INDEX_FILE,
  ID_MAP_FILE,
  HNSW_DEFAULTS,
  readRecordedModel,
} from './vector-index/index.js';
export { MODEL_FILE, type IndexModelRecord } from './vector-index/model-record.js';
export type { ModelFingerprint, PreprocessRecord } from './model-fingerprint.js';
export type {
  CreateIndexOptions,
  GalleryItem,
  IndexType,
  Metric,
  SearchHit,
  VectorIndex,
} from './vector-index/types.js';
export { createRecognizer, type Recognizer, type RecognitionResult } from './recognize.js';
export { startServer, type ImageError } from './serve/server.js';
