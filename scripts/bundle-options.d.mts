export declare const EXTERNAL: string[];
export declare const REQUIRE_BANNER: string;
