// Testbench: streams one beat per cycle from a vector file written by the
// Rust test (eddy_quant's reference group sums), counts cycles from the
// first beat to the last group's output, and checks every group sum.
// File format (hex, $readmemh): beats lines of {last, codes, acts}, then
// groups lines of sums.
module tb_mac_tile;
  parameter PE = 4;
  parameter SIMD = 4;
  parameter BEATS = 32;
  parameter GROUPS = 4;
  localparam W = 1 + PE*SIMD*8 + SIMD*8;
  reg clk = 0, rst = 1;
  reg in_valid = 0, in_last = 0;
  reg [PE*SIMD*8-1:0] codes;
  reg [SIMD*8-1:0] acts;
  wire out_valid;
  wire [PE*32-1:0] sums;
  reg [W-1:0] beat [0:BEATS-1];
  reg [PE*32-1:0] want [0:GROUPS-1];
  integer i, cycle, first, outs, errors;
  mac_tile #(.PE(PE), .SIMD(SIMD)) dut (.clk(clk), .rst(rst), .in_valid(in_valid), .in_last(in_last),
                                        .codes(codes), .acts(acts), .out_valid(out_valid), .sums(sums));
  always #1 clk = ~clk;
  initial begin
    $readmemh("beats.hex", beat);
    $readmemh("sums.hex", want);
    errors = 0; outs = 0; cycle = 0; first = -1;
    @(posedge clk); @(posedge clk); rst = 0;
    for (i = 0; i < BEATS; i = i + 1) begin
      @(negedge clk);
      {in_last, codes, acts} = beat[i];
      in_valid = 1;
    end
    @(negedge clk); in_valid = 0; in_last = 0;
  end
  always @(posedge clk) begin
    if (!rst) begin
      cycle = cycle + 1;
      if (in_valid && first < 0) first = cycle;
      if (out_valid) begin
        if (sums !== want[outs]) begin
          errors = errors + 1;
          $display("group %0d: got %h want %h", outs, sums, want[outs]);
        end
        outs = outs + 1;
        if (outs == GROUPS) begin
          // Cycles from the first beat entering to the last sum leaving.
          $display("cycles=%0d beats=%0d groups=%0d errors=%0d", cycle - first + 1, BEATS, GROUPS, errors);
          $finish;
        end
      end
      if (cycle > 10 * BEATS + 100) begin
        $display("timeout errors=%0d outs=%0d", errors, outs);
        $finish;
      end
    end
  end
endmodule
